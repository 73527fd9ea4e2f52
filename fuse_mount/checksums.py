"""The disk cache's checksum store: the CRC32Cs of every cached chunk, on disk.

Why a store of its own and not a file next to each cache file: a dataset of
small files is cached as one small cache file each, and a second file per
file would double the inodes and add a filesystem block (4 KiB) to every
110 KB image, space the cache's byte bound does not see.  Here the records of
all cache files of one ``data/<2 hex>/`` directory go into one append-only
log, ``<cache-dir>/crc/<2 hex>.log``: ~120 bytes per MiB cached.

A record is fixed-size: magic, the cache key, chunk index, chunk length, one
CRC32C per block of the chunk, and a CRC32C of the record itself.
A chunk's record is appended after its bytes are written and before the chunk
joins the cache's index; the last record of a chunk wins.  Evictions write
nothing (the chunk's range becomes a hole, so a stale record describes
nothing whole); a chunk cached again appends a new record.

At start-up every log is read, records that are torn, misplaced or fail their
own CRC are ignored (their chunks are then not cached), and each log is
rewritten with the records of the chunks that were kept (also cutting off a
record torn by a crash, which would otherwise shift every later append).
While mounted, a log is rewritten the same way once it holds more than twice
as many records as live chunks, so eviction churn cannot grow it without
bound.  Rewrites go to a temporary file renamed over the log.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import threading
from collections.abc import Iterable

import crc32c

log = logging.getLogger(__name__)

_MAGIC = b"HCC2"
_HEAD = struct.Struct("<4s40sQI")  # magic, key (40 hex digits), chunk index, chunk length
_U32 = struct.Struct("<I")
#: rewrite a log once it holds this many records more than twice its live chunks
_COMPACT_SLACK = 1024

Entry = tuple[str, int, int, bytes]  # key, chunk index, chunk length, packed block CRCs


class ChecksumStore:
    """Per-chunk block CRCs of one cache directory (see the module docstring)."""

    def __init__(self, root: str, chunk_size: int, block: int):
        self.dir = os.path.join(root, "crc")
        os.makedirs(self.dir, exist_ok=True)
        self.block = block
        self._crc_bytes = 4 * -(-chunk_size // block)
        self.record_size = _HEAD.size + self._crc_bytes + 4
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}
        self._records: dict[str, int] = {}  # records in each log now
        self._limit: dict[str, int] = {}  # ... and how many make it worth rewriting

    def path(self, sub: str) -> str:
        return os.path.join(self.dir, sub + ".log")

    # -- start-up -------------------------------------------------------------------
    def load(self) -> dict[tuple[str, int], tuple[int, bytes]]:
        """``(key, index) -> (length, block CRCs)`` of every intact record."""
        out: dict[tuple[str, int], tuple[int, bytes]] = {}
        for ent in os.scandir(self.dir):
            if not ent.name.endswith(".log"):
                _unlink_quietly(ent.path)  # a rewrite cut short
                continue
            try:
                with open(ent.path, "rb") as fh:
                    raw = fh.read()
            except OSError as exc:
                log.warning("checksum log %s unreadable (%s); its chunks are dropped",
                            ent.path, exc)
                continue
            bad = 0
            for pos in range(0, len(raw) - self.record_size + 1, self.record_size):
                entry = self._parse(raw, pos)
                if entry is None:
                    bad += 1
                else:
                    key, idx, span, crcs = entry
                    out[(key, idx)] = (span, crcs)
            if bad or len(raw) % self.record_size:
                log.warning("checksum log %s: %d damaged records%s", ent.path, bad,
                            ", a torn end" if len(raw) % self.record_size else "")
        return out

    def rewrite(self, sub: str, entries: Iterable[Entry]) -> None:
        """Replace ``sub``'s log by the records of ``entries`` (the live chunks)."""
        data = b"".join(self.record(*e) for e in entries)
        path = self.path(sub)
        with self._lock:
            fd = self._fds.pop(sub, -1)
            if fd >= 0:
                os.close(fd)
            if not data:
                _unlink_quietly(path)
                self._records.pop(sub, None)
                self._limit.pop(sub, None)
                return
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
            live = len(data) // self.record_size
            self._records[sub] = live
            self._limit[sub] = 2 * live + _COMPACT_SLACK

    # -- while mounted --------------------------------------------------------------
    def add(self, key: str, idx: int, span: int, crcs: bytes) -> bool:
        """Append a chunk's record (one ``write`` with ``O_APPEND``: never interleaved
        with another).  True when that log now holds so many more records than
        live chunks that the caller should :meth:`rewrite` it."""
        sub = key[:2]
        record = self.record(key, idx, span, crcs)
        with self._lock:
            fd = self._fds.get(sub)
            if fd is None:
                fd = self._fds[sub] = os.open(self.path(sub),
                                              os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if os.write(fd, record) != len(record):
                # a torn record is ignored at start-up, but it would shift the ones after it
                os.close(self._fds.pop(sub))
                raise OSError(errno.ENOSPC, "short write to the checksum log")
            n = self._records[sub] = self._records.get(sub, 0) + 1
            return n > self._limit.get(sub, _COMPACT_SLACK)

    def close(self) -> None:
        with self._lock:
            fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            os.close(fd)

    # -- records ----------------------------------------------------------------------
    def record(self, key: str, idx: int, span: int, crcs: bytes) -> bytes:
        if len(key) > 40:
            raise ValueError(f"cache key {key!r} is longer than 40 characters")
        body = _HEAD.pack(_MAGIC, key.encode("ascii"), idx, span) + crcs.ljust(self._crc_bytes,
                                                                               b"\0")
        return body + _U32.pack(crc32c.crc32c(body))

    def _parse(self, raw: bytes, pos: int) -> Entry | None:
        end = pos + self.record_size
        if crc32c.crc32c(raw[pos:end - 4]) != _U32.unpack_from(raw, end - 4)[0]:
            return None
        magic, key, idx, span = _HEAD.unpack_from(raw, pos)
        if magic != _MAGIC or span <= 0:
            return None
        n = -(-span // self.block)
        if 4 * n > self._crc_bytes:
            return None
        start = pos + _HEAD.size
        try:
            name = key.rstrip(b"\0").decode("ascii")
        except UnicodeDecodeError:
            return None
        return name, idx, span, raw[start:start + 4 * n]

    def crcs(self, data: bytes | memoryview) -> bytes:
        """CRC32C of every ``block`` of a chunk's bytes, packed little-endian."""
        view = memoryview(data)
        b = self.block
        return b"".join(_U32.pack(crc32c.crc32c(view[i:i + b])) for i in range(0, len(view), b))


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
