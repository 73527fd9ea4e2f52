"""Listing-driven prefetch of small files (``--prefetch-max-size``, issue 16).

An image-classification epoch (``ImageFolder``, WebDataset's per-sample
files) opens every file of a few class directories once, whole, in a
shuffled order.  Read one at a time, each file costs the mount a NameNode
round trip and a DataNode connection in series with the reader.  Once a
process opens a second file of a directory, this module reads the other small
files of that directory (those up to ``--prefetch-max-size``) into the disk
cache ahead of it, ``--prefetch-streams`` batches at a time, through the
filesystem core's batched fill (the warm-up's): a batch of up to
``BATCH_FILES`` files of one directory is read file after file, then one
listing of the directory taken after those reads is the identity check of
all of them (each must still be the listed file: same file id, else it is
skipped), then the checksummed cache writes, so a file rewritten in HDFS is
never cached under the identity the listing gave it.  An open of a prefetched
file then finds it complete in the cache and costs no RPC at all; an open of
one being fetched waits for that fetch (its whole batch) instead of starting a
second one.

Bounds, and how it stops:

* memory: at most ``streams`` batches in flight, each at most ``max_size``
  bytes (one file may be that large alone); a batch goes to the disk cache
  as soon as its identity check is done;
* the lead: prefetched files that have not been opened yet may hold at most
  ``lead_bytes``.  When a process stops opening them (the pattern stopped),
  nothing more is fetched until it opens one again: what a stopped pattern
  wastes is bounded by the lead;
* the cache: a prefetch never evicts.  Once a file would take the cache above
  ``CACHE_FILL`` of ``--cache-size``, prefetching ends for the life of the
  mount (logged once, ``hdfs_fuse_prefetch_stops_total``);
* large files are never prefetched: a sequential shard read opens files above
  the threshold, and those go through read-ahead as before.

Without a disk cache there is nowhere to put whole files but memory, and the
mount does not prefetch (measured: see BENCHMARKS.md, issue 16).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import logging
import posixpath
import threading
from typing import Protocol

from fuse_mount.cache import DiskCache
from fuse_mount.metrics import MountMetrics
from hdfs_client.base import FileStatus

log = logging.getLogger(__name__)

#: opens of distinct files in one directory before its siblings are prefetched
TRIGGER_OPENS = 2
#: files of one directory fetched by one stream as one batch, with one identity
#: check (a listing) for all of them; also bounded by ``max_size`` bytes
BATCH_FILES = 8
#: a prefetch stops for good once the disk cache would be fuller than this fraction
CACHE_FILL = 0.9
#: directories whose opens are counted (least recently opened forgotten first)
_MAX_DIRS = 10_000
#: paths remembered as prefetched-and-unopened, queued, or already opened
_MAX_PATHS = 1_000_000


class Core(Protocol):
    """What the prefetch uses of the filesystem core (:class:`fuse_mount.fs.HdfsFilesystem`)."""

    cache: DiskCache | None
    metrics: MountMetrics

    def listing(self, path: str) -> list[FileStatus]: ...

    def cached(self, path: str, st: FileStatus) -> bool: ...

    def fill_cache_many(self, entries: list[tuple[str, FileStatus]]) -> list[int]: ...


class SmallFilePrefetch:
    """Prefetches the small siblings of files a process opens; see the module docstring."""

    def __init__(self, core: Core, *, max_size: int, streams: int, lead_bytes: int):
        assert core.cache is not None
        self.core = core
        self.cache = core.cache
        self.max_size = max_size
        self.streams = streams
        self.lead_bytes = lead_bytes
        self.stopped: str | None = None  # why prefetching ended for good
        self._lock = threading.Lock()
        self._opens: collections.OrderedDict[str, set[str]] = collections.OrderedDict()
        self._active: set[str] = set()          # directories whose files were queued
        self._queue: collections.deque[tuple[str, FileStatus]] = collections.deque()
        self._known: set[str] = set()           # queued, in flight or fetched: once each
        self._fetched: dict[str, int] = {}      # prefetched, not opened yet: path -> bytes
        self._lead = 0                          # bytes of _fetched and of fetches in flight
        self._inflight: dict[str, threading.Event] = {}
        self._batches = 0                       # batches being fetched (<= streams)
        self._opened: set[str] = set()          # opened by a process: never fetched after
        self._closed = False
        # Threads of its own: a fetch waits for the core's HDFS calls, which run on the
        # core's IoPool; fetches on that pool could fill it and wait for themselves.
        self._pool = cf.ThreadPoolExecutor(max_workers=streams + 1,
                                           thread_name_prefix="prefetch")
        self._tasks = 0                         # activations and fetches not finished

    # -- the hook in HdfsFilesystem.open -------------------------------------------------
    def on_open(self, path: str, wait: float) -> None:
        """A process opens ``path`` for reading: count the pattern, consume a
        prefetched file, wait (up to ``wait`` s) for one being fetched."""
        parent = posixpath.dirname(path) or "/"
        activate = False
        with self._lock:
            if len(self._opened) < _MAX_PATHS:
                self._opened.add(path)
            size = self._fetched.pop(path, None)
            if size is not None:
                self._lead -= size
                self.core.metrics.prefetch_hits.inc()
            event = self._inflight.get(path)
            if parent not in self._active and self.stopped is None:
                seen = self._opens.get(parent)
                if seen is None:
                    seen = self._opens[parent] = set()
                    if len(self._opens) > _MAX_DIRS:
                        self._opens.popitem(last=False)
                seen.add(path)
                self._opens.move_to_end(parent)
                if len(seen) >= TRIGGER_OPENS:
                    self._active.add(parent)
                    del self._opens[parent]
                    activate = True
        if activate:
            self._submit(self._activate, parent)
        elif size is not None:
            self._pump()          # the lead shrank: fetch more
        if event is not None:
            event.wait(wait)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()
            unopened = len(self._fetched)
        m = self.core.metrics
        log.info("prefetch of small files: %d fetched (%d bytes), %d opens found theirs, "
                 "%d never opened", m.value("hdfs_fuse_prefetch_files_total"),
                 m.value("hdfs_fuse_prefetch_bytes_total"),
                 m.value("hdfs_fuse_prefetch_hits_total"), unopened)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def idle(self) -> bool:
        """Nothing queued to start, being listed or being fetched (for tests and logs)."""
        with self._lock:
            return self._tasks == 0 and (not self._queue or self.stopped is not None
                                         or self._lead + self._queue[0][1].length
                                         > self.lead_bytes)

    def _submit(self, fn, *args) -> None:
        with self._lock:
            if self._closed:
                return
            self._tasks += 1
        try:
            self._pool.submit(self._run, fn, *args)
        except RuntimeError:        # shut down meanwhile
            with self._lock:
                self._tasks -= 1

    def _run(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a prefetch never takes the mount down
            log.exception("prefetch task failed")
        finally:
            with self._lock:
                self._tasks -= 1

    # -- queueing -------------------------------------------------------------------------
    def _activate(self, parent: str) -> None:
        """Queue the small files of ``parent`` (the core's listing: cached, else one RPC)."""
        try:
            children = self.core.listing(parent)
        except Exception as exc:  # noqa: BLE001 - only a prefetch
            log.debug("prefetch: listing %s failed: %s", parent, exc)
            return
        base = parent.rstrip("/")
        # files the cache holds already are not queued: no lead, no listing, no count
        picked = [(f"{base}/{c.name}", c) for c in children
                  if not c.is_dir and 0 < c.length <= self.max_size]
        picked = [(p, c) for p, c in picked if not self.core.cached(p, c)]
        with self._lock:
            for path, st in picked:
                if path not in self._known and path not in self._opened:
                    self._known.add(path)
                    self._queue.append((path, st))
            if len(self._known) > _MAX_PATHS:
                self._known.clear()    # only de-duplication: a repeat is found in the cache
        if picked:
            log.debug("prefetch: %d small files of %s queued", len(picked), parent)
        self._pump()

    def _pump(self) -> None:
        """Start batches while streams, the lead and the cache allow: each batch is up
        to BATCH_FILES consecutive queued files of one directory, at most ``max_size``
        bytes together (so the memory bound stays ``streams`` x ``max_size``)."""
        starts: list[list[tuple[str, FileStatus]]] = []
        with self._lock:
            while (self._queue and not self._closed and self.stopped is None
                   and self._batches < self.streams):
                batch: list[tuple[str, FileStatus]] = []
                size = 0
                while self._queue and len(batch) < BATCH_FILES:
                    path, st = self._queue[0]
                    if path in self._opened:
                        self._queue.popleft()
                        continue
                    if batch and (posixpath.dirname(path) != posixpath.dirname(batch[0][0])
                                  or size + st.length > self.max_size):
                        break
                    if self._lead + st.length > self.lead_bytes and self._lead > 0:
                        break               # wait for opens to consume what is fetched
                    if self.cache.used_bytes + st.length > CACHE_FILL * self.cache.max_bytes:
                        self._stop_locked(f"the disk cache is {CACHE_FILL:.0%} full")
                        break
                    self._queue.popleft()
                    self._inflight[path] = threading.Event()
                    self._lead += st.length     # reserved now, so the lead bound holds
                    size += st.length
                    batch.append((path, st))
                if not batch:
                    break
                self._batches += 1
                starts.append(batch)
        for batch in starts:
            self._submit(self._fetch, batch)

    def _stop_locked(self, why: str) -> None:
        self.stopped = why
        self._queue.clear()
        self.core.metrics.prefetch_stops.inc()
        log.info("prefetch of small files stopped: %s", why)

    # -- one batch ------------------------------------------------------------------------
    def _fetch(self, batch: list[tuple[str, FileStatus]]) -> None:
        """Read ``batch`` whole into the cache through the core's batched fill: the
        files one after the other on this stream, then one listing of their directory
        as the identity check of all of them (a file replaced since its listing is not
        cached), then the cache writes. Measured against a status call per file: the
        same rate with half the NameNode calls (BENCHMARKS.md, batched prefetch)."""
        got: list[int] = [0] * len(batch)
        try:
            got = self.core.fill_cache_many(batch)
        except Exception as exc:  # noqa: BLE001 - gone, unreadable: skip them
            log.debug("prefetch of %d files of %s skipped: %s", len(batch),
                      posixpath.dirname(batch[0][0]), exc)
        finally:
            events = []
            with self._lock:
                self._batches -= 1
                for (path, st), n in zip(batch, got, strict=True):
                    events.append(self._inflight.pop(path))
                    if n and path not in self._opened:
                        self._fetched[path] = st.length
                    else:
                        self._lead -= st.length
                        if n:      # opened meanwhile: that open waited for this fetch
                            self.core.metrics.prefetch_hits.inc()
            for event in events:
                event.set()
        for n in got:
            if n:
                self.core.metrics.prefetch_files.inc()
                self.core.metrics.prefetch_bytes.inc(n)
        self._pump()
