"""Replica files of one DataNode: ``rbw/`` while written, ``finalized/`` after.

Layout (like a real DataNode, simplified)::

    <dn dir>/current/rbw/blk_<id>          replica being written
    <dn dir>/current/rbw/blk_<id>.meta     its CRC32C per 512-byte chunk (big-endian u32s)
    <dn dir>/current/finalized/blk_<id>    finished replica (+ .meta)

Why a ``.meta`` file: a read packet carries 128 CRCs per 64 KiB; computing
them per read costs more Python calls than sending the data.  CRCs are
computed (or taken verbatim from the client's packets) once at write time,
so reads just slice them.  The last, partial chunk of a read is always
recomputed, because a replica still being written may extend that chunk.

A replica moves to ``finalized/`` by an atomic rename after its data and
meta are fsynced, so after a crash a finalized replica is always complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import threading

import crc32c

log = logging.getLogger(__name__)

BPC = 512  # bytes per checksum chunk; both clients always use 512


def chunk_crcs(data: bytes | memoryview, bpc: int = BPC) -> bytes:
    """Big-endian CRC32C of each ``bpc`` chunk of ``data`` (last may be partial)."""
    mv = memoryview(data)
    n = len(mv)
    fn = crc32c.crc32c
    crcs = [fn(mv[i:i + bpc]) for i in range(0, n, bpc)]
    return struct.pack(f">{len(crcs)}I", *crcs)


def fsync_path(*paths: str) -> None:
    """fsync files or directories by name (a directory's fsync makes renames in it durable)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class ReplicaError(Exception):
    """A replica cannot be used for the requested operation."""


class Replica:
    """One block replica on disk.  ``lock`` guards state changes and writes."""

    __slots__ = (
        "__weakref__",
        "block_id",
        "data_path",
        "epoch",
        "finalized",
        "length",
        "lock",
        "meta_path",
        "visible",
    )

    def __init__(self, block_id: int, data_path: str, meta_path: str, length: int,
                 finalized: bool):
        self.block_id = block_id
        self.data_path = data_path
        self.meta_path = meta_path
        self.length = length            #: bytes on disk
        self.visible = length           #: bytes acknowledged to the writer (readable)
        self.finalized = finalized
        self.lock = threading.Lock()
        #: bumped by lease recovery / deletion: a writer with an old epoch must stop
        self.epoch = 0


class Storage:
    def __init__(self, root: str, *, fsync: bool = True):
        self.root = root
        self.fsync = fsync
        self.finalized_dir = os.path.join(root, "current", "finalized")
        self.rbw_dir = os.path.join(root, "current", "rbw")
        os.makedirs(self.finalized_dir, exist_ok=True)
        os.makedirs(self.rbw_dir, exist_ok=True)

    # -- paths -----------------------------------------------------------------------
    def _paths(self, block_id: int, finalized: bool) -> tuple[str, str]:
        d = self.finalized_dir if finalized else self.rbw_dir
        data = os.path.join(d, f"blk_{block_id}")
        return data, data + ".meta"

    # -- startup scan --------------------------------------------------------------
    def scan(self) -> dict[int, Replica]:
        """Find every replica; rebuild meta files that do not match their data."""
        found: dict[int, Replica] = {}
        for finalized in (False, True):  # finalized wins over a stale rbw copy
            d = self.finalized_dir if finalized else self.rbw_dir
            for name in os.listdir(d):
                if not name.startswith("blk_") or name.endswith(".meta"):
                    if name.endswith(".tmp"):
                        os.unlink(os.path.join(d, name))
                    continue
                try:
                    block_id = int(name[4:])
                except ValueError:
                    continue
                data, meta = self._paths(block_id, finalized)
                length = os.path.getsize(data)
                if block_id in found:
                    self._unlink(found[block_id])
                rep = Replica(block_id, data, meta, length, finalized)
                if not os.path.exists(meta) or os.path.getsize(meta) != self.meta_size(length):
                    log.info("rebuilding checksums of %s", data)
                    self.rebuild_meta(rep, 0)
                found[block_id] = rep
        return found

    @staticmethod
    def meta_size(length: int) -> int:
        return (length + BPC - 1) // BPC * 4

    # -- lifecycle -----------------------------------------------------------------
    def create_rbw(self, block_id: int) -> Replica:
        data, meta = self._paths(block_id, False)
        for p in (data, meta):
            with open(p, "wb"):
                pass
        return Replica(block_id, data, meta, 0, False)

    def unfinalize(self, rep: Replica) -> None:
        """Move a finalized replica back to rbw for append (caller holds rep.lock)."""
        if not rep.finalized:
            return
        data, meta = self._paths(rep.block_id, False)
        os.replace(rep.meta_path, meta)
        os.replace(rep.data_path, data)
        rep.data_path, rep.meta_path, rep.finalized = data, meta, False

    def finalize(self, rep: Replica) -> None:
        """fsync and atomically move rbw → finalized (caller holds rep.lock)."""
        if rep.finalized:
            return
        data, meta = self._paths(rep.block_id, True)
        self._publish(rep.data_path, rep.meta_path, data, meta)
        rep.data_path, rep.meta_path, rep.finalized = data, meta, True
        rep.visible = rep.length

    def truncate(self, rep: Replica, length: int) -> None:
        """Cut a replica to ``length`` and fix the CRC of its new last chunk."""
        if length > rep.length:
            raise ReplicaError(f"cannot extend replica {rep.block_id} from {rep.length} "
                               f"to {length}")
        os.truncate(rep.data_path, length)
        os.truncate(rep.meta_path, self.meta_size(length))
        rep.length = length
        rep.visible = min(rep.visible, length)
        if length % BPC:
            self.rebuild_meta(rep, length - length % BPC)

    def rebuild_meta(self, rep: Replica, start: int) -> None:
        """Recompute CRCs for chunks from ``start`` (chunk-aligned) to the end of data."""
        start -= start % BPC
        with open(rep.data_path, "rb") as f:
            f.seek(start)
            data = f.read()
        crcs = chunk_crcs(data)
        mode = "r+b" if os.path.exists(rep.meta_path) else "w+b"
        with open(rep.meta_path, mode) as m:
            m.seek(start // BPC * 4)
            m.write(crcs)
            m.truncate(self.meta_size(start + len(data)))

    def delete(self, rep: Replica) -> None:
        self._unlink(rep)

    @staticmethod
    def _unlink(rep: Replica) -> None:
        for p in (rep.data_path, rep.meta_path):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def import_prefix(self, block_id: int, src: Replica, length: int) -> Replica:
        """A new finalized replica holding the first ``length`` bytes of ``src`` (truncate:
        copy-on-truncate keeps the old block intact for snapshots that still read it)."""
        data, meta = self._paths(block_id, True)
        tmp_data, tmp_meta = data + ".tmp", meta + ".tmp"
        with open(src.data_path, "rb") as fin, open(tmp_data, "wb") as fout:
            fout.write(fin.read(length))
        with open(src.meta_path, "rb") as fin, open(tmp_meta, "wb") as fout:
            fout.write(fin.read(self.meta_size(length)))
        rep = Replica(block_id, tmp_data, tmp_meta, length, True)
        if length % BPC:
            self.rebuild_meta(rep, length - length % BPC)
        self._publish(tmp_data, tmp_meta, data, meta)
        rep.data_path, rep.meta_path = data, meta
        return rep

    def import_copy(self, block_id: int, src: Replica) -> Replica:
        """Copy a finalized replica from another DataNode (re-replication)."""
        data, meta = self._paths(block_id, True)
        tmp_data, tmp_meta = data + ".tmp", meta + ".tmp"
        shutil.copyfile(src.data_path, tmp_data)
        shutil.copyfile(src.meta_path, tmp_meta)
        length = os.path.getsize(tmp_data)
        self._publish(tmp_data, tmp_meta, data, meta)
        return Replica(block_id, data, meta, length, True)

    def _publish(self, src_data: str, src_meta: str, data: str, meta: str) -> None:
        """Make a replica's files durable, then move them to their finalized names.

        Meta first: a crash between the two renames leaves a finalized ``.meta``
        without data, which start-up ignores, never data without checksums.  The
        directory is fsync'ed too, or the renames themselves could be lost.
        """
        if self.fsync:
            fsync_path(src_data, src_meta)
        os.replace(src_meta, meta)
        os.replace(src_data, data)
        if self.fsync:
            fsync_path(self.finalized_dir)


class ReplicaWriter:
    """Keeps a replica's files open for the duration of one WRITE_BLOCK op."""

    def __init__(self, storage: Storage, rep: Replica):
        self.storage = storage
        self.rep = rep
        self.epoch = rep.epoch
        self._data = os.open(rep.data_path, os.O_RDWR)
        self._meta = os.open(rep.meta_path, os.O_RDWR)

    def write(self, offset: int, data: memoryview, crcs: memoryview | None) -> None:
        """Write one packet's data at ``offset``; ``crcs`` are per-chunk CRCs from the
        packet's start (valid as block CRCs only if ``offset`` is chunk-aligned)."""
        rep = self.rep
        with rep.lock:
            if rep.epoch != self.epoch:
                raise ReplicaError(f"replica {rep.block_id} was recovered or deleted")
            if offset > rep.length:
                raise ReplicaError(f"write at {offset} would leave a hole in replica "
                                   f"{rep.block_id} of length {rep.length}")
            n = len(data)
            os.pwrite(self._data, data, offset)
            end = offset + n
            if offset % BPC == 0:
                os.pwrite(self._meta, crcs if crcs is not None else chunk_crcs(data),
                          offset // BPC * 4)
            else:
                start = offset - offset % BPC
                chunk = os.pread(self._data, end - start, start)
                os.pwrite(self._meta, chunk_crcs(chunk), start // BPC * 4)
            rep.length = max(rep.length, end)

    def publish(self) -> None:
        """Everything written so far becomes readable (called just before the ack)."""
        rep = self.rep
        rep.visible = rep.length

    def sync(self) -> None:
        os.fsync(self._data)
        os.fsync(self._meta)

    def close(self) -> None:
        for fd in (self._data, self._meta):
            try:
                os.close(fd)
            except OSError:
                pass
        self._data = self._meta = -1
