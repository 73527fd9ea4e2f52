"""Prometheus metrics of one mount.

Every mount owns its own :class:`~prometheus_client.CollectorRegistry`, so two
mounts in one process (tests, the benchmark) never mix numbers, and the HTTP
endpoint (``--metrics-port``) serves exactly one mount.  The counters exist
whether or not the endpoint is on: the self-benchmark and the tests read them
directly with :meth:`MountMetrics.value`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0, 60.0)


class MountMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.bytes_from_hdfs = Counter(
            "hdfs_fuse_hdfs_read_bytes", "Bytes read from HDFS (DataNodes)", registry=r)
        self.bytes_from_cache = Counter(
            "hdfs_fuse_cache_read_bytes", "Bytes served from the local disk cache", registry=r)
        self.bytes_spliced = Counter(
            "hdfs_fuse_cache_spliced_bytes",
            "Bytes of those sent through the reply pipe (vmsplice of the checked bytes) "
            "instead of a copy into a reply buffer", registry=r)
        self.bytes_served = Counter(
            "hdfs_fuse_served_bytes", "Bytes returned to FUSE read requests", registry=r)
        self.cache_hits = Counter(
            "hdfs_fuse_cache_hits", "Cache chunk lookups that found the chunk", registry=r)
        self.cache_misses = Counter(
            "hdfs_fuse_cache_misses", "Cache chunk lookups that did not", registry=r)
        self.cache_evictions = Counter(
            "hdfs_fuse_cache_evictions", "Chunks evicted to stay under --cache-size", registry=r)
        self.cache_corrupt_chunks = Counter(
            "hdfs_fuse_cache_corrupt_chunks",
            "Cached chunks whose bytes failed their CRC32C (or length) on a read: dropped, "
            "and read from HDFS again", registry=r)
        self.cache_write_errors = Counter(
            "hdfs_fuse_cache_write_errors",
            "Chunks not cached because the cache disk failed (e.g. full); reads went through",
            registry=r)
        self.warmup_files = Counter(
            "hdfs_fuse_warmup_files", "Files the mount's warm-up (--warmup) read into the cache",
            registry=r)
        self.warmup_bytes = Counter(
            "hdfs_fuse_warmup_bytes", "Bytes the mount's warm-up read into the cache", registry=r)
        self.prefetch_files = Counter(
            "hdfs_fuse_prefetch_files",
            "Small files read whole into the cache ahead of their open (--prefetch-max-size)",
            registry=r)
        self.prefetch_bytes = Counter(
            "hdfs_fuse_prefetch_bytes", "Bytes of those files", registry=r)
        self.prefetch_hits = Counter(
            "hdfs_fuse_prefetch_hits", "Opens of a file prefetched (or being prefetched)",
            registry=r)
        self.prefetch_stops = Counter(
            "hdfs_fuse_prefetch_stops", "Times prefetching ended for good (the cache full)",
            registry=r)
        self.cache_bytes = Gauge(
            "hdfs_fuse_cache_bytes", "Bytes held in the local disk cache", registry=r)
        self.cluster_cache_directives = Gauge(
            "hdfs_fuse_cluster_cache_directives",
            "HDFS cache directives this mount keeps alive (--cache-pool)", registry=r)
        self.cluster_cache_bytes = Gauge(
            "hdfs_fuse_cluster_cache_bytes",
            "Bytes of those directives the NameNode reports cached in DataNode memory, "
            "and needed", ["state"], registry=r)
        self.cluster_cache_errors = Counter(
            "hdfs_fuse_cluster_cache_errors",
            "Cache directive calls that failed (refused, or HDFS unreachable)", registry=r)
        self.readahead_bytes = Counter(
            "hdfs_fuse_readahead_bytes", "Bytes fetched by read-ahead", registry=r)
        self.readahead_wasted = Counter(
            "hdfs_fuse_readahead_wasted_bytes",
            "Read-ahead bytes dropped without being read (seeks, early close)", registry=r)
        self.readahead_memory = Gauge(
            "hdfs_fuse_readahead_memory_bytes", "Read-ahead buffer bytes reserved now", registry=r)
        self.requests = Histogram(
            "hdfs_fuse_request_seconds", "Latency of FUSE requests by operation", ["op"],
            buckets=_LATENCY_BUCKETS, registry=r)
        self.errors = Counter(
            "hdfs_fuse_errors", "FUSE requests answered with an error", ["op", "errno"],
            registry=r)
        self.stale_handles = Counter(
            "hdfs_fuse_stale_handles",
            "Open files found replaced in HDFS when reopened: their reads fail with ESTALE",
            registry=r)
        self.hdfs_timeouts = Counter(
            "hdfs_fuse_hdfs_timeouts", "HDFS calls abandoned after --io-timeout", registry=r)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (``..._total`` for counters), 0 when absent."""
        v = self.registry.get_sample_value(name, labels or None)
        return float(v or 0.0)

    def bind_gauge(self, gauge: Gauge, fn: Callable[[], float]) -> None:
        gauge.set_function(fn)

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Start the HTTP endpoint; return the bound port."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        bound = int(server.server_address[1])
        log.info("metrics on http://%s:%d/metrics", addr, bound)
        return bound


def scrape(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> dict[str, float]:
    """A mount's Prometheus endpoint as ``{sample name with labels: value}`` (benchmarks and
    tests read a running mount's counters this way)."""
    import urllib.request

    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
