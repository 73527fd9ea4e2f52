"""Local disk cache of file data: fixed-size chunks, LRU, bounded in bytes.

This module decides what is cached, checked and evicted (the index, the LRU
order, generations, checksums, the background writer's queue);
:mod:`fuse_mount.cache_files` does the I/O on the cache files themselves.

Layout: ``<cache-dir>/data/<2 hex>/<key>``, one sparse file per cached file
version, each chunk (``chunk_size``, default 1 MiB = the largest FUSE request)
at its own offset.  One file rather than one file per chunk because a cold
cache is read back from the disk in file order: measured on the development
VM, 1 GiB written as 1,024 chunk files read back at 1.0-1.4 GB/s, the same
chunks in one file (written out of order, as parallel read-ahead delivers
them) at 2.8-3.0 GB/s: the kernel's read-ahead spans chunks and merges I/O.
It also means one inode per file instead of one per MiB.

Consistency: a chunk is readable only once it is in the in-memory index,
which happens after its bytes are written.  Evicting a chunk takes it out of
the index and then punches a hole in its range (``fallocate``), both under
the cache lock; every index entry carries a generation number, and a read
checks after its ``preadv`` that the generation of each chunk
it used is still indexed, so a read that raced an eviction is a miss
(re-fetched from HDFS), never zeros.  A file is unlinked when it holds no
chunk and none is being written.

Integrity: every chunk carries a CRC32C per 64 KiB block (the checksum HDFS
itself uses; ``crc32c`` computes it with the CPU's instruction at ~27 GB/s),
computed when the chunk is written and checked on every read from the cache,
before a byte leaves this module.  A mismatch drops the chunk (counted in
``hdfs_fuse_cache_corrupt_chunks``) and the read is a miss, served from HDFS.
Blocks rather than one CRC per chunk because FUSE requests (1008 KiB when
spliced) do not line up with chunks: a request verifies only the blocks it
touches instead of two whole chunks.  Verifying means the bytes are read into
memory: cache hits are no longer spliced straight from the cache file into
``/dev/fuse``, they are read with ``preadv`` (the requested bytes straight into
the reply buffer, the partial blocks at either end into a small scratch
buffer), checked, and then handed to the kernel (see BENCHMARKS.md, "cache
verification cost", for what that costs the warm path).

The checksums are kept by :mod:`fuse_mount.checksums`, in one append-only log
per cache subdirectory (not one file per cache file: small files would
double their inodes); a chunk's record is written after its bytes and before
it joins the index.  A chunk without an intact record is not cached.

Restart: the index is rebuilt from the files with ``SEEK_DATA``/``SEEK_HOLE``
and the checksum records: a chunk counts as cached when its whole range is
data (a write cut short by a crash leaves a hole, so that chunk is simply
missing) and it has an intact record of that length; data outside such
chunks is punched.
Filesystems that cannot report holes are detected with a probe file at
start-up; their cache starts empty.  LRU order after a restart follows file
mtimes.  A directory from a release without checksums is emptied.

Identity: ``key = sha256(cluster, file id, length, mtime)``.  The file id is
HDFS's inode id: a file created again under the same name (an overwrite, a
``distcp``) gets a new one even with the same length and mtime, while a rename
keeps it, so a renamed file is still cached.  Length and mtime stay in the key
because an append keeps the id.  Without a file id (a client that cannot read
it) the key is ``sha256(cluster, path, length, mtime)``.  Because the
identity comes from the metadata cache, a file changed in HDFS gets a new key
at most ``--metadata-ttl`` after the change and the old chunks age out
through LRU.

Failure policy: the cache is an accelerator, never a reason for a read to
fail.  Any error writing a chunk (disk full, read-only disk, permissions)
is counted, the chunk is skipped, writes pause for a few seconds, and the read
is served from the bytes just fetched from HDFS.  A short chunk on read
is dropped and re-fetched.

Writes are asynchronous: a fetched part is handed to one background writer
thread through a queue bounded in bytes; a full queue first slows the fetch
down (up to 2 s: a cache missing chunks would send the next epoch back to
HDFS), and only then is the chunk dropped.  Chunks are written with O_DIRECT: measured
on the development VM, a buffered 1 MiB write into fresh page-cache pages
costs ~2.2 ms of CPU (ext4), an O_DIRECT one ~0.65 ms, mostly device time.
Done inline the buffered writes halved first-epoch throughput.
:meth:`DiskCache.flush` waits for the queue (tests, unmount).

Only one mount may use a cache directory at a time (``flock`` on
``<cache-dir>/.lock``): two LRU indexes over the same files would evict each
other's chunks behind their backs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import queue
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING

import crc32c

from fuse_mount.cache_files import (
    CacheFile, ChunkWriter, data_ranges, holes_are_reported, punch_hole, unlink_quietly,
)
from fuse_mount.checksums import ChecksumStore

if TYPE_CHECKING:
    from fuse_mount.metrics import MountMetrics

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 1 << 20
_WRITE_BACKOFF_S = 5.0
_QUEUE_WAIT_S = 2.0
#: bytes covered by one CRC32C (a chunk holds chunk_size // this many, at most)
CRC_BLOCK = 64 * 1024
_U32 = struct.Struct("<I")


class CacheBusy(RuntimeError):
    """Another mount holds the cache directory."""


def cache_key(cluster: str, path: str, length: int, mtime_ms: int, file_id: int = 0) -> str:
    """File version identity: HDFS's file id + length + mtime (the path only
    when the id is unknown, 0); see the module docstring."""
    if file_id:
        ident = f"id\0{cluster}\0{file_id}\0{length}\0{mtime_ms}"
    else:
        ident = f"{cluster}\0{path}\0{length}\0{mtime_ms}"
    h = hashlib.sha256(ident.encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:40]


class DiskCache:
    def __init__(self, root: str, max_bytes: int, *, chunk_size: int = DEFAULT_CHUNK,
                 metrics: MountMetrics | None = None, write_queue_bytes: int = 64 << 20):
        if chunk_size <= 0 or max_bytes <= 0:
            raise ValueError("chunk_size and max_bytes must be positive")
        self.root = root
        self.max_bytes = max_bytes
        self.chunk_size = chunk_size
        self.metrics = metrics
        self._data = os.path.join(root, "data")
        os.makedirs(self._data, exist_ok=True)
        self._lock_fd = os.open(os.path.join(root, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise CacheBusy(f"cache directory {root} is in use by another mount") from None
        self._lock = threading.Lock()
        #: bytes per CRC: 64 KiB, or the whole chunk when chunks are smaller or not a multiple
        self.block = CRC_BLOCK if chunk_size % CRC_BLOCK == 0 else chunk_size
        self.checksums = ChecksumStore(root, chunk_size, self.block)
        # (key, chunk) -> (bytes, generation, block CRCs), least recently used first
        self._index: OrderedDict[tuple[str, int], tuple[int, int, bytes]] = OrderedDict()
        self._pending: set[tuple[str, int]] = set()
        self._chunks_in_file: dict[str, int] = {}  # indexed + pending chunks per key
        self._generation = 0
        self._bytes = 0
        self._no_writes_until = 0.0
        self._writes = ChunkWriter(chunk_size)
        self._tls = threading.local()
        self._rebuild()
        if metrics is not None:
            metrics.bind_gauge(metrics.cache_bytes, lambda: self._bytes)
        self.write_queue_bytes = write_queue_bytes
        self._queued = 0
        self._queue: queue.SimpleQueue[tuple[str, int, memoryview] | None] = queue.SimpleQueue()
        self._queue_cv = threading.Condition()
        self._writer = threading.Thread(target=self._write_loop, name="cache-writer", daemon=True)
        self._writer.start()

    # -- paths ---------------------------------------------------------------------
    def _file(self, key: str) -> str:
        return os.path.join(self._data, key[:2], key)

    def chunk_span(self, file_length: int, idx: int) -> int:
        """Bytes chunk ``idx`` holds for a file of ``file_length`` bytes."""
        start = idx * self.chunk_size
        return max(0, min(self.chunk_size, file_length - start))

    # -- start-up ------------------------------------------------------------------
    def _rebuild(self) -> None:
        trust_holes = holes_are_reported(self._data)
        records = self.checksums.load() if trust_holes else {}
        found: list[tuple[float, str, int, int, bytes]] = []
        subs = {name[:-len(".log")] for name in os.listdir(self.checksums.dir)
                if name.endswith(".log")}
        for sub in os.scandir(self._data):
            if not sub.is_dir():
                continue
            subs.add(sub.name)
            for ent in os.scandir(sub.path):
                key = ent.name
                if not trust_holes or not _is_key(key) or key[:2] != sub.name:
                    unlink_quietly(ent.path)  # older layout, a probe, or unverifiable
                    continue
                scanned = self._scan_file(key, ent.path, records)
                if scanned is None or not scanned[1]:
                    unlink_quietly(ent.path)
                    continue
                mtime, valid = scanned
                found.extend((mtime, key, idx, span, crcs) for idx, span, crcs in valid)
        found.sort()
        for _mtime, key, idx, size, crcs in found:
            self._generation += 1
            self._index[(key, idx)] = (size, self._generation, crcs)
            self._chunks_in_file[key] = self._chunks_in_file.get(key, 0) + 1
            self._bytes += size
        self._evict_locked(0)
        for sub in subs:  # the logs, with exactly the records of the chunks kept
            self._rewrite_checksums(sub)
        if found:
            log.info("disk cache %s: %d chunks, %d bytes", self.root, len(self._index), self._bytes)

    def _rewrite_checksums(self, sub: str) -> None:
        with self._lock:
            entries = [(key, idx, e[0], e[2]) for (key, idx), e in self._index.items()
                       if key[:2] == sub]
        try:
            self.checksums.rewrite(sub, entries)
        except OSError as exc:
            log.warning("cannot rewrite the checksum log of %s (%s)", sub, exc)

    def _scan_file(self, key: str, path: str, records: dict[tuple[str, int], tuple[int, bytes]]
                   ) -> tuple[float, list[tuple[int, int, bytes]]] | None:
        """The chunks of one cache file that are whole and have an intact checksum
        record of their length, as ``(index, length, block CRCs)``; everything
        else in the file is punched.  ``None`` when the file cannot be read."""
        cs = self.chunk_size
        writable = True
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            writable = False  # a read-only file: keep what is valid, punch nothing
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return None
        try:
            st = os.fstat(fd)
            valid: list[tuple[int, int, bytes]] = []
            whole = 0
            ranges = list(data_ranges(fd, st.st_size))
            for lo, hi in ranges:
                for idx in range(-(-lo // cs), hi // cs + 1):
                    span = self.chunk_span(st.st_size, idx)
                    if span and idx * cs + span <= hi:
                        whole += 1
                        rec = records.get((key, idx))
                        if rec is not None and rec[0] == span:
                            valid.append((idx, span, rec[1]))
            if whole > len(valid):
                log.warning("cache file %s: %d of %d chunks without an intact checksum "
                            "record; dropped", path, whole - len(valid), whole)
            if writable:
                self._punch_outside(fd, ranges, {idx for idx, _span, _crcs in valid})
            return st.st_mtime, valid
        except OSError as exc:
            log.warning("cache file %s unreadable (%s); dropping it", path, exc)
            return None
        finally:
            os.close(fd)

    def _punch_outside(self, fd: int, ranges: list[tuple[int, int]], keep: set[int]) -> None:
        """Free every data range of a cache file that no kept chunk covers (torn
        writes, chunks without a valid checksum): they are not in the index, so
        they would hold disk space the LRU bound does not see."""
        cs = self.chunk_size
        for lo, hi in ranges:
            pos = lo
            while pos < hi:
                idx = pos // cs
                end = min(hi, (idx + 1) * cs)
                if idx not in keep:
                    try:
                        punch_hole(fd, pos, end - pos)
                    except OSError:
                        return  # no hole punching here: the space stays until the file goes
                pos = end

    # -- lookups -------------------------------------------------------------------
    def has_range(self, key: str, offset: int, size: int) -> bool:
        """True if every chunk overlapping ``[offset, offset+size)`` is cached."""
        if size <= 0:
            return True
        first, last = offset // self.chunk_size, (offset + size - 1) // self.chunk_size
        index = self._index
        return all((key, i) in index for i in range(first, last + 1))

    def read_range(self, key: str, file_length: int, offset: int,
                   size: int) -> bytearray | None:
        """The bytes if all covering chunks are cached and intact, else ``None``."""
        size = max(0, min(size, file_length - offset))
        if not self.has_range(key, offset, size):
            return None  # a miss (every cold read-ahead part): allocate nothing
        buf = bytearray(size)
        n = self.read_into(key, file_length, offset, memoryview(buf))
        return None if n is None else buf

    def read_into(self, key: str, file_length: int, offset: int, out: memoryview,
                  file: CacheFile | None = None) -> int | None:
        """Like :meth:`read_range`, but into ``out`` (a FUSE reply buffer): no
        ``bytes`` per request, no second copy.  Returns the number of bytes
        read (``min(len(out), file_length - offset)``), or ``None`` when a
        covering chunk is missing, was evicted meanwhile, or fails its checksum.
        ``file``: the open handle's :class:`CacheFile`, instead of an open and
        close per call."""
        size = min(len(out), file_length - offset)
        if size <= 0:
            return 0
        return self._read_verified(key, file_length, offset, out[:size], file)

    def _read_verified(self, key: str, file_length: int, offset: int, out: memoryview,
                       file: CacheFile | None) -> int | None:
        """Read ``len(out)`` cached bytes at ``offset`` into ``out`` and check them.

        One ``preadv`` reads the whole CRC blocks the range touches: the
        requested bytes straight into ``out``, the parts of the first and last
        block outside it into a per-thread scratch buffer.  ``None`` (a miss)
        unless every covering chunk was indexed before and is still indexed,
        with the same generation, after, and every block matches its CRC;
        chunks that do not are dropped and counted as corrupt.

        Reads through one handle's :class:`CacheFile` take turns.  The
        kernel's read-ahead sends a sequential reader's requests to several
        FUSE threads at once; reading the cache file for all of them at the
        same moment, slightly out of order, turns the file's read-ahead into
        small synchronous reads.  One at a time, it keeps streaming: a 1 GiB
        re-read from the disk went from 1.52 to 1.86 GB/s (6 interleaved
        rounds), from RAM it was level.  Different handles (other files,
        other readers) still read in parallel, and the checksums are computed
        outside the turn.
        """
        size = len(out)
        cs, blk = self.chunk_size, self.block
        first = offset // cs
        chunks = [(key, i) for i in range(first, (offset + size - 1) // cs + 1)]
        index = self._index
        with self._lock:
            try:
                entries = [index[c] for c in chunks]
            except KeyError:
                return None
            for c in chunks:
                index.move_to_end(c)
        odd = [i for i, e in enumerate(entries)
               if e[0] != self.chunk_span(file_length, chunks[i][1])]
        if odd:
            self._drop_corrupt([chunks[i] for i in odd], [entries[i] for i in odd],
                               "a length that is not the file's")
            return None
        lo = offset - offset % blk
        end = offset + size
        hi = min(file_length, -(-end // blk) * blk)
        scratch = self._scratch()
        head, tail = scratch[:offset - lo], scratch[blk:blk + hi - end]
        path = self._file(key)
        try:
            fd = file.fd() if file is not None else os.open(path, os.O_RDONLY)
        except OSError:
            self._drop_chunks(chunks)
            return None
        try:
            with file.in_order if file is not None else contextlib.nullcontext():
                got = os.preadv(fd, [b for b in (head, out, tail) if b], lo)
        except OSError as exc:
            log.warning("cache file %s unreadable (%s); dropping its chunks", path, exc)
            got = -1
        finally:
            if file is None:
                os.close(fd)
        bad = self._bad_chunks(entries, first, lo, hi, head, out, tail) if got == hi - lo else []
        with self._lock:  # an eviction during the read may have punched what we read
            if any(index.get(c, (0, 0))[1] != e[1] for c, e in zip(chunks, entries, strict=True)):
                return None
        if got != hi - lo:
            if got >= 0:
                log.warning("cache file %s is short; dropping chunks %d-%d", path,
                            chunks[0][1], chunks[-1][1])
            self._drop_chunks(chunks)
            return None
        if bad:
            self._drop_corrupt([chunks[i] for i in bad], [entries[i] for i in bad],
                               "bytes that fail their CRC32C")
            return None
        if self.metrics is not None:
            self.metrics.cache_hits.inc(len(chunks))
            self.metrics.bytes_from_cache.inc(size)
        return size

    def _bad_chunks(self, entries: list[tuple[int, int, bytes]], first: int, lo: int, hi: int,
                    head: memoryview, out: memoryview, tail: memoryview) -> list[int]:
        """Positions in ``entries`` of the chunks with a block in ``[lo, hi)`` whose
        bytes (``head + out + tail``, read from ``lo``) do not match its CRC."""
        cs, blk = self.chunk_size, self.block
        pieces = []
        pos = lo
        for piece in (head, out, tail):
            if piece:
                pieces.append((pos, pos + len(piece), piece))
                pos += len(piece)
        bad: list[int] = []
        crc = crc32c.crc32c
        unpack = _U32.unpack_from
        for b0 in range(lo, hi, blk):
            b1 = min(b0 + blk, hi)
            value = 0
            for p0, p1, piece in pieces:
                if p1 > b0 and p0 < b1:
                    value = crc(piece[max(b0, p0) - p0:min(b1, p1) - p0], value)
            i = b0 // cs - first
            if value != unpack(entries[i][2], (b0 % cs) // blk * 4)[0] and (not bad
                                                                          or bad[-1] != i):
                bad.append(i)
        return bad

    def _drop_corrupt(self, chunks: list[tuple[str, int]],
                      entries: list[tuple[int, int, bytes]], why: str) -> None:
        """Drop chunks whose cached bytes are wrong, unless they changed meanwhile
        (then they were evicted or rewritten, and are not what was checked)."""
        with self._lock:
            dropped = [c for c, e in zip(chunks, entries, strict=True)
                       if self._index.get(c, (0, 0))[1] == e[1]]
        if not dropped:
            return
        log.warning("cache file %s: chunks %s hold %s; dropped, read from HDFS again",
                    self._file(dropped[0][0]), [idx for _key, idx in dropped], why)
        self._drop_chunks(dropped)
        if self.metrics is not None:
            self.metrics.cache_corrupt_chunks.inc(len(dropped))

    def _scratch(self) -> memoryview:
        """This thread's buffer for the parts of the first and last CRC block
        that a read does not return (``block`` bytes each)."""
        buf = getattr(self._tls, "scratch", None)
        if buf is None:
            buf = self._tls.scratch = memoryview(bytearray(2 * self.block))
        return buf

    def release(self, key: str, first: int, count: int, file: CacheFile) -> None:
        """Drop chunks ``first .. first+count-1`` of ``key`` from the kernel page
        cache (``posix_fadvise(DONTNEED)``); the chunks stay on the disk.

        Why: bytes served to the kernel with its page cache kept for the FUSE
        file are then in RAM twice.  Dropping the cache file's copy behind the
        reader halves the memory a re-read takes, and on a VM that reports
        free pages to its host it is also faster: the next reads reuse pages
        just freed instead of touching memory the host has to back again.
        """
        if count <= 0:
            return
        try:
            cs = self.chunk_size
            os.posix_fadvise(file.fd(), first * cs, count * cs, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass

    def file(self, key: str) -> CacheFile:
        """A :class:`CacheFile` for one open FUSE handle of ``key``."""
        return CacheFile(self._file(key))

    # -- inserts -------------------------------------------------------------------
    def put_aligned_async(self, key: str, file_length: int, offset: int, data: bytes) -> int:
        """Queue every whole chunk inside ``data`` for the background writer.

        Returns the number of chunks queued; when the write queue stays full
        for ``_QUEUE_WAIT_S`` the remaining chunks are dropped.
        """
        queued = 0
        for idx, chunk in self._whole_chunks(file_length, offset, data):
            if (key, idx) in self._index or (key, idx) in self._pending:
                continue
            span = len(chunk)
            with self._queue_cv:
                # Backpressure first: a cache that silently misses chunks would
                # send the next epoch back to HDFS.  Only a disk that stays
                # slower than the network for seconds makes us drop chunks.
                deadline = time.monotonic() + _QUEUE_WAIT_S
                while self._queued + span > self.write_queue_bytes:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._queue_cv.wait(left)
                if self._queued + span > self.write_queue_bytes:
                    if self.metrics is not None:
                        self.metrics.cache_write_errors.inc()
                    break
                self._queued += span
            self._queue.put((key, idx, chunk))
            queued += 1
        return queued

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, idx, view = item
            try:
                self.put(key, idx, view)
            except Exception:  # noqa: BLE001 - never let the writer die
                log.exception("cache writer failed on %s.%d", key, idx)
            finally:
                with self._queue_cv:
                    self._queued -= len(view)
                    self._queue_cv.notify_all()
                del view, item

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until queued chunks are written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue_cv:
            while self._queued > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue_cv.wait(left)
        return True

    def put_aligned(self, key: str, file_length: int, offset: int, data: bytes) -> int:
        """Store every whole chunk inside ``data`` (which starts at ``offset``) now.

        Returns the number of chunks stored.
        """
        stored = 0
        for idx, chunk in self._whole_chunks(file_length, offset, data):
            if (key, idx) not in self._index:
                if not self.put(key, idx, chunk):
                    break
                stored += 1
        return stored

    def _whole_chunks(self, file_length: int, offset: int,
                      data: bytes) -> Iterator[tuple[int, memoryview]]:
        """``(index, view)`` of every whole chunk inside ``data`` (which starts at
        ``offset``): ``chunk_size`` long, or ending at end of file."""
        cs = self.chunk_size
        end = offset + len(data)
        idx = -(-offset // cs)  # first chunk starting at or after offset
        view = memoryview(data)
        while idx * cs < end:
            span = self.chunk_span(file_length, idx)
            start = idx * cs
            if span == 0 or start + span > end:
                return
            yield idx, view[start - offset:start - offset + span]
            idx += 1

    def put(self, key: str, idx: int, data: bytes | memoryview) -> bool:
        size = len(data)
        if size > self.max_bytes or time.monotonic() < self._no_writes_until:
            return False
        with self._lock:
            if (key, idx) in self._index or (key, idx) in self._pending:
                return True
            self._evict_locked(size)
            # reserve before writing so concurrent puts cannot overshoot the bound;
            # the chunk joins the index (becomes readable) only once it is complete
            self._bytes += size
            self._pending.add((key, idx))
            self._chunks_in_file[key] = self._chunks_in_file.get(key, 0) + 1
        crcs = self.checksums.crcs(data)
        try:
            self._writes.write(self._file(key), idx * self.chunk_size, data)
            # the record after the bytes: a crash in between leaves a chunk without
            # one, which the next start-up drops
            rewrite = self.checksums.add(key, idx, size, crcs)
        except OSError as exc:
            with self._lock:
                self._pending.discard((key, idx))
                self._bytes -= size
                self._release_locked(key, idx * self.chunk_size, size)
                self._no_writes_until = time.monotonic() + _WRITE_BACKOFF_S
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    # the disk holds less than --cache-size promised: free a tenth
                    self._shrink_locked(self._bytes - max(self._bytes // 10, size))
            if self.metrics is not None:
                self.metrics.cache_write_errors.inc()
            log.warning("cache write failed (%s); reading through for %.0fs", exc, _WRITE_BACKOFF_S)
            return False
        with self._lock:
            self._pending.discard((key, idx))
            self._generation += 1
            self._index[(key, idx)] = (size, self._generation, crcs)
        if rewrite:
            # Evictions left records of chunks that are gone.  (A chunk of this
            # subdirectory written by another thread in the meantime may lose its
            # record: after a restart it is simply not cached.)
            self._rewrite_checksums(key[:2])
        return True

    # -- eviction ------------------------------------------------------------------
    def _evict_locked(self, incoming: int) -> None:
        self._shrink_locked(self.max_bytes - incoming)

    def _shrink_locked(self, target: int) -> None:
        evicted = 0
        while self._index and self._bytes > target:
            (key, idx), (size, _gen, _crcs) = self._index.popitem(last=False)
            self._bytes -= size
            self._release_locked(key, idx * self.chunk_size, size)
            evicted += 1
        if evicted and self.metrics is not None:
            self.metrics.cache_evictions.inc(evicted)

    def _release_locked(self, key: str, offset: int, size: int) -> None:
        """Give back the disk space of a chunk that just left the index (or whose
        write failed): punch its range, or unlink the file if nothing else of it
        is cached or being written.  Under the lock, so that no write of the
        same chunk can land in between and be punched away."""
        left = self._chunks_in_file.get(key, 1) - 1
        path = self._file(key)
        if left <= 0:
            self._chunks_in_file.pop(key, None)
            unlink_quietly(path)
            return
        self._chunks_in_file[key] = left
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError:
            return
        try:
            punch_hole(fd, offset, size)
        except OSError as exc:
            # No hole punching here: the space stays taken until the file goes.
            log.debug("cannot punch %s at %d: %s", path, offset, exc)
        finally:
            os.close(fd)

    def _drop_chunks(self, chunks: list[tuple[str, int]]) -> None:
        with self._lock:
            for key, idx in chunks:
                entry = self._index.pop((key, idx), None)
                if entry is not None:
                    self._bytes -= entry[0]
                    self._release_locked(key, idx * self.chunk_size, entry[0])

    # -- introspection ---------------------------------------------------------------
    @property
    def used_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._index)

    def close(self, drain: float = 10.0) -> None:
        """Finish queued writes (up to ``drain`` seconds), then release the directory."""
        self.flush(drain)
        self._queue.put(None)
        self._writer.join(1.0)
        self.checksums.close()
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            os.close(self._lock_fd)


def _is_key(name: str) -> bool:
    """Cache file names are bare keys; older layouts and probes had dots."""
    return bool(name) and "." not in name


