"""The read path of a mount: one :class:`ReadHandle` per open-for-read, and
:class:`Reads`, which serves their reads.

A read is served from one of two places, decided per request:

* the disk cache, when it holds the whole range and read-ahead is not
  streaming: :meth:`Reads.from_cache` is the one place that does it, for all
  three ways the adapter asks (bytes, into a reply buffer, a view to vmsplice),
  with release-behind and the served-bytes metric;
* otherwise the handle's :class:`~fuse_mount.readahead.Prefetcher`, whose
  parts are range reads on the shared :class:`~fuse_mount.iopool.IoPool`
  (the disk cache first, then HDFS, whose bytes are then queued for the cache).

File identity lives here too: a handle is one version of a file (HDFS file
id, length, mtime), and an HDFS reader opened by path later is checked against
it (:meth:`Reads.reader`), so bytes of a file replaced meanwhile are never
read, served or cached under the old identity.
"""

from __future__ import annotations

import errno
import functools
import logging
import threading
import time

from fuse_mount.cache import DiskCache, cache_key
from fuse_mount.cache_files import CacheFile
from fuse_mount.errors import FsError
from fuse_mount.iopool import IoPool
from fuse_mount.metadata import MetadataCache
from fuse_mount.metrics import MountMetrics
from fuse_mount.readahead import MemoryBudget, Prefetcher, ReadaheadConfig
from hdfs_client import errors as hdfs_errors
from hdfs_client.base import FileStatus, HdfsClient, HdfsReader, HdfsWriter

log = logging.getLogger(__name__)

# Cache chunks dropped from the page cache behind a sequential reader: this many
# behind its position (kernel read-ahead keeps about 8 MiB of requests in flight
# on several FUSE threads, not in order), in batches of this many (one fadvise each).
_RELEASE_MARGIN = 16
_RELEASE_BATCH = 8
#: After a read of a handle timed out, the next read of the same range within this
#: many seconds fails at once: the kernel retries a failed read-ahead page
#: synchronously, and that retry must not wait a second --io-timeout (SEMANTICS.md
#: promises one).  Once: the read after it tries HDFS again.
RETRY_FAIL_FAST_S = 1.0


class ReadHandle:
    """One open-for-read: a snapshot of the file's identity plus its read-ahead."""

    def __init__(self, path: str, hpath: str, status: FileStatus, key: str):
        self.path = path
        self.hpath = hpath
        self.size = status.length
        self.file_id = status.file_id
        self.mtime_ms = status.mtime_ms
        self.key = key
        #: why reads that need HDFS fail with ESTALE (the file was replaced), or None
        self.stale: str | None = None
        self.keep_pages = False  # FOPEN_KEEP_CACHE: the kernel's pages are this version's
        #: direct I/O because another version of this path is open through the page cache
        self.bypass = False
        self.timeouts: list[tuple[float, int, int]] = []  # (when, start, end) of timed-out reads
        self.lock = threading.Lock()
        self.reader: HdfsReader | None = None
        self.prefetcher: Prefetcher | None = None
        self.cache_last = 0  # end of the last read served from the cache
        self.cache_file: CacheFile | None = None  # opened on the first read from the cache
        self.cache_released = 0  # cache chunks before this dropped from the page cache
        self.kernel_cached = True  # the kernel keeps this handle's pages (not direct I/O)


class Reads:
    """Serves reads of :class:`ReadHandle` s; see the module docstring."""

    def __init__(self, client: HdfsClient, *, cache: DiskCache | None, pool: IoPool,
                 budget: MemoryBudget, ra_config: ReadaheadConfig, timeout: float,
                 metrics: MountMetrics, meta: MetadataCache):
        self.client = client
        self.cache = cache
        self.pool = pool
        self.budget = budget
        self.ra_config = ra_config
        self.timeout = timeout
        self.metrics = metrics
        self.meta = meta

    def handle(self, path: str, hpath: str, st: FileStatus, *,
               read_ahead: bool = True) -> ReadHandle:
        """A handle on the version of the file ``st`` describes (``read_ahead=False``:
        one read whole by :meth:`read_unchecked`, which needs no read-ahead)."""
        key = cache_key(self.client.uri, hpath, st.length, st.mtime_ms, st.file_id)
        h = ReadHandle(path, hpath, st, key)
        if not read_ahead:
            return h
        h.prefetcher = Prefetcher(
            h.size, functools.partial(self._fetch, h), pool=self.pool, budget=self.budget,
            config=self.ra_config, timeout=self.timeout, metrics=self.metrics)
        return h

    def start(self, h: ReadHandle, verify: bool) -> None:
        """At open: open the HDFS reader and fetch the first part (see HdfsFilesystem.open)."""
        assert h.prefetcher is not None
        first = h.prefetcher.start(functools.partial(self._open_and_fetch, h, verify))
        if first is None:
            self.pool.call(self.reader, h, None, verify, timeout=self.timeout, what="open")
        else:
            try:
                self.pool.wait(first, self.timeout, "open")
            except BaseException:
                self.close(h)
                raise

    def holds(self, h: ReadHandle) -> bool:
        """Whether the disk cache holds all of ``h``'s file already."""
        return self.cache is not None and self.cache.has_range(h.key, 0, h.size)

    def _store_whole(self, h: ReadHandle, data: bytes) -> int:
        """Put ``data``, all of ``h``'s file, into the cache: its size once the cache
        holds it all, 0 for a short read or a cache that took none of it."""
        assert self.cache is not None
        if len(data) != h.size:
            return 0
        stored = self.cache.put_aligned(h.key, h.size, 0, data)
        return h.size if stored and self.cache.has_range(h.key, 0, h.size) else 0

    def read_unchecked(self, h: ReadHandle) -> bytes:
        """``h``'s whole file, through a reader opened by path *without* the identity
        check :meth:`reader` makes after an open. Only for :meth:`fill_checked`, which
        caches the bytes once a status of the path taken after this open (one listing
        for a whole batch of files, instead of one status call per file) says they
        are ``h``'s version. It runs on the caller's thread (the warm-up's or the
        prefetch's own pool), not on the :class:`IoPool` with its ``--io-timeout``: a
        DataNode that stops answering stalls a warm-up or a prefetch stream, never a
        FUSE request."""
        reader = self.reader(h, verify=False)
        try:
            data = reader.read_range(0, h.size)
        except hdfs_errors.HdfsTimeout:
            raise
        except hdfs_errors.HdfsIOError as exc:
            log.info("read of %s failed (%s); reopening", h.hpath, exc)
            data = self.reader(h, reopen=reader).read_range(0, h.size)  # a reopen is checked
        self.metrics.bytes_from_hdfs.inc(len(data))
        return data

    def fill_checked(self, h: ReadHandle, data: bytes, fresh: FileStatus | None) -> int:
        """Cache ``data`` (:meth:`read_unchecked` of ``h``) if ``fresh``, the path's
        status read after that read's open, is still ``h``'s file: the bytes the cache
        now holds of this version (the file's size), 0 when it was replaced or gone
        (nothing cached, where a checked open would raise ESTALE) or the cache took none."""
        assert self.cache is not None
        if fresh is None or not same_file(h, fresh):
            return 0
        if self.cache.has_range(h.key, 0, h.size):
            return h.size
        return self._store_whole(h, data)

    # -- the three ways the adapter asks --------------------------------------------------
    def read(self, h: ReadHandle, size: int, offset: int) -> bytes | memoryview:
        """Bytes at ``offset``; a memoryview when it is a slice of a buffer."""
        if offset >= h.size or size <= 0:
            return b""
        cached = self.from_cache(h, offset, size)
        if cached is not None:
            return cached
        return self._read_ahead(h, offset, size)

    def read_into(self, h: ReadHandle, out: memoryview, offset: int) -> int:
        """:meth:`read` into ``out`` (the FUSE reply buffer); returns the byte count.

        Data from the disk cache is read straight into ``out`` (one copy, no
        ``bytes`` object per request); everything else is copied in once.
        """
        if offset >= h.size or not out:
            return 0
        cached = self.from_cache(h, offset, len(out), out)
        if cached is not None:
            return len(cached)
        data = self._read_ahead(h, offset, len(out))
        n = len(data)
        if n > len(out):
            raise FsError(errno.EIO, "read returned more than asked")
        out[:n] = data
        return n

    def read_cached(self, h: ReadHandle, size: int, offset: int,
                    out: memoryview | None = None) -> memoryview | None:
        """The bytes at ``offset`` if the disk cache holds all of them (checked
        against their CRCs), read into ``out`` (or a new buffer) and returned as
        a view of it; ``None`` when this read is not a complete cache hit (then
        :meth:`read` serves it).  The adapter hands the view to the kernel by
        ``vmsplice``, without another copy."""
        if offset >= h.size or size <= 0:
            return None
        return self.from_cache(h, offset, size, out)

    def from_cache(self, h: ReadHandle, offset: int, size: int,
                   out: memoryview | None = None) -> memoryview | None:
        """The one place reads are served from the disk cache: the checked bytes of
        ``[offset, offset+size)`` (cut at the end of the file) read into ``out`` (or a
        new buffer), pages behind a sequential reader released, the bytes counted; or
        None when the cache does not answer this read whole."""
        size = min(size, h.size - offset)
        if size <= 0 or not self._cache_serves(h, offset, size):
            return None
        assert self.cache is not None
        view = memoryview(bytearray(size)) if out is None else out[:size]
        n = self.cache.read_into(h.key, h.size, offset, view, self._cache_file(h))
        if n is None:
            return None
        self._release_behind(h, offset, offset + n)
        self.metrics.bytes_served.inc(n)
        return view[:n]

    # -- the rest of the read path --------------------------------------------------------
    def _cache_serves(self, h: ReadHandle, offset: int, size: int) -> bool:
        """Whether the disk cache answers this read directly.  While read-ahead is
        streaming, every read goes through it instead (its fetches use the cache
        anyway), so that its view of the stream stays whole."""
        assert h.prefetcher is not None
        return (self.cache is not None and h.prefetcher.idle
                and self.cache.has_range(h.key, offset, min(size, h.size - offset)))

    def _cache_file(self, h: ReadHandle) -> CacheFile:
        cache_file = h.cache_file
        if cache_file is None:
            assert self.cache is not None
            with h.lock:
                if h.cache_file is None:
                    h.cache_file = self.cache.file(h.key)
                cache_file = h.cache_file
        return cache_file

    def _release_behind(self, h: ReadHandle, offset: int, end: int) -> None:
        """Drop the cache file's pages behind a sequential reader (see
        :meth:`DiskCache.release`) when the kernel keeps the FUSE file's own.

        Read-ahead on the cache file itself is the kernel's: the handle's one
        descriptor (:class:`CacheFile`) is read front to back with
        ``FADV_SEQUENTIAL``.  An explicit ``FADV_WILLNEED`` ahead of the reader
        was measured to halve throughput from the disk (1.1 vs 1.8 GB/s): it
        reads synchronously and competes with the kernel's own read-ahead.
        """
        assert self.cache is not None
        sequential, h.cache_last = offset == h.cache_last, end
        if not sequential or not h.kernel_cached:
            return
        # A margin behind the reader for requests still in flight on other FUSE threads.
        upto = end // self.cache.chunk_size - _RELEASE_MARGIN
        with h.lock:
            released = h.cache_released
            if upto - released < _RELEASE_BATCH:
                return
            h.cache_released = upto
        self.cache.release(h.key, released, upto - released, self._cache_file(h))

    def _read_ahead(self, h: ReadHandle, offset: int, size: int) -> bytes | memoryview:
        assert h.prefetcher is not None
        end = offset + size
        now = time.monotonic()
        if h.timeouts:
            with h.lock:
                live = [t for t in h.timeouts if now - t[0] < RETRY_FAIL_FAST_S]
                hit = next((t for t in live if t[1] < end and offset < t[2]), None)
                if hit is not None:
                    live.remove(hit)  # once: a read after that tries HDFS again
                h.timeouts = live
            if hit is not None:
                # The kernel's synchronous retry of a page whose read-ahead just
                # timed out: waiting again would double the bound.
                raise hdfs_errors.HdfsTimeout(f"a read of {h.hpath} at {hit[1]} timed out "
                                       f"{now - hit[0]:.2f}s ago; not waiting again",
                                       path=h.hpath)
        try:
            data = h.prefetcher.read(offset, size)
        except hdfs_errors.HdfsTimeout:
            with h.lock:
                h.timeouts.append((time.monotonic(), offset, end))
            raise
        self.metrics.bytes_served.inc(len(data))
        return data

    def _open_and_fetch(self, h: ReadHandle, verify: bool, offset: int, length: int) -> bytes:
        self.reader(h, None, verify)
        return self._fetch(h, offset, length)

    def _fetch(self, h: ReadHandle, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)`` of ``h``: cache first, else HDFS (then cache them).

        Runs on an IoPool worker, never on a FUSE thread directly.
        """
        cache = self.cache
        if cache is None:
            return self._read_hdfs(h, offset, length)
        data = cache.read_range(h.key, h.size, offset, length)
        if data is not None:
            return data
        cs = cache.chunk_size
        lo = offset - offset % cs
        hi = min(h.size, -(-(offset + length) // cs) * cs)
        whole = self._read_hdfs(h, lo, hi - lo)
        self.metrics.cache_misses.inc(-(-(hi - lo) // cs))
        cache.put_aligned_async(h.key, h.size, lo, whole)
        if lo == offset and len(whole) <= length:
            return whole
        return whole[offset - lo:offset - lo + length]

    def _read_hdfs(self, h: ReadHandle, offset: int, length: int) -> bytes:
        reader = self.reader(h)
        try:
            data = reader.read_range(offset, length)
        except hdfs_errors.HdfsTimeout:
            raise
        except hdfs_errors.HdfsIOError as exc:
            # Block locations go stale when DataNodes restart or move: reopen once.
            log.info("read of %s at %d failed (%s); reopening", h.hpath, offset, exc)
            reader = self.reader(h, reopen=reader)
            data = reader.read_range(offset, length)
        self.metrics.bytes_from_hdfs.inc(len(data))
        return data

    def reader(self, h: ReadHandle, reopen: HdfsReader | None = None,
                verify: bool = True) -> HdfsReader:
        """The handle's HDFS reader, opened (by path) if it has none yet or again
        if it is ``reopen`` (a read through it failed).

        A reader opened by path may open another file than the handle's: one
        written under the same name since (an overwrite gets a new file id).
        So the path's status is read again after the open, and unless it is
        the same file (same id, at least as long: an append keeps the id), the
        reader is dropped and the handle becomes stale: its reads that need
        HDFS fail with ESTALE, what the disk cache holds of its version is
        still served, and nothing of the other file is read, served or cached
        under this handle's identity.  ``verify=False`` skips the check where
        nothing can mix (see :meth:`open`); a reopen is always checked.
        """
        with h.lock:
            if h.stale is not None:
                raise FsError(errno.ESTALE, h.stale)
            if h.reader is None or h.reader is reopen:
                old = h.reader
                reader = self.client.open_reader(h.hpath)
                if verify or old is not None:
                    try:
                        fresh = self.client.get_status(h.hpath)
                    except BaseException:
                        close_quietly(reader)
                        raise
                    if not same_file(h, fresh):
                        close_quietly(reader)
                        h.stale = (f"{h.hpath} was replaced in HDFS after it was opened "
                                   f"(file id {h.file_id}, {h.size} bytes; now file id "
                                   f"{fresh.file_id}, {fresh.length} bytes)")
                        log.warning("%s; its handle fails with ESTALE", h.stale)
                        self.meta.invalidate(h.path)
                        self.metrics.stale_handles.inc()
                        raise FsError(errno.ESTALE, h.stale)
                h.reader = reader
                if old is not None:
                    close_quietly(old)
            return h.reader

    def close(self, h: ReadHandle) -> None:
        """The handle's read-ahead, HDFS reader and cache-file descriptor, closed."""
        if h.prefetcher is not None:
            h.prefetcher.close()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("closed %s: read-ahead %s, window %d", h.hpath, h.prefetcher.stats,
                          h.prefetcher.window)
        with h.lock:
            reader, h.reader = h.reader, None
            cache_file, h.cache_file = h.cache_file, None
        if reader is not None:
            close_quietly(reader)
        if cache_file is not None:
            cache_file.close()


def same_file(h: ReadHandle, fresh: FileStatus) -> bool:
    """Whether ``fresh`` (the path's status now) is still the file ``h`` opened."""
    if h.file_id and fresh.file_id:
        return fresh.file_id == h.file_id and fresh.length >= h.size
    # no file ids (see FileStatus.file_id): length and mtime are all there is
    return (fresh.length, fresh.mtime_ms) == (h.size, h.mtime_ms)


def close_quietly(obj: HdfsReader | HdfsWriter) -> None:
    try:
        obj.close()
    except Exception as exc:  # noqa: BLE001
        log.debug("close failed: %s", exc)
