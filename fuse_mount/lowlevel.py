"""FUSE low-level requests -> :class:`fuse_mount.fs.HdfsFilesystem`, for our own
request loop (:mod:`fuse_mount.session`).

The kernel speaks in node ids and handle numbers; the core speaks in paths
and its own handles.  :class:`Operations` translates through a
:class:`fuse_mount.node_table.NodeTable`, which writes every id and handle
down before the reply that hands it out, so that a daemon taking over the
connection after a crash answers for all of them:

* a node id -> its path, as before;
* a read handle the dead daemon opened -> opened again here, at its first use;
* a write handle the dead daemon opened -> lost: its bytes were in the dead
  process.  Every later call on it fails with EIO (a flush of a handle whose
  HDFS file had been completed succeeds), and at takeover the file it was
  creating is deleted, so that no file looks complete with bytes missing.

Deliberately thin otherwise: unpack, call the core, pack; every exception
becomes an errno through the one table in :mod:`fuse_mount.errors`.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

from fuse_mount import kernel_abi as k
from fuse_mount.errors import QUIET_ERRNOS, FsError, errno_for
from fuse_mount.fs import Attr, HdfsFilesystem
from fuse_mount.node_table import NodeTable
from fuse_mount.session import MAX_WRITE, ReplyError, Request
from hdfs_client.errors import HdfsError

log = logging.getLogger(__name__)

FOPEN_NOFLUSH = 1 << 5
RENAME_NOREPLACE = 1


def _split(seconds: float) -> tuple[int, int]:
    whole = int(seconds)
    return whole, int((seconds - whole) * 1e9)


def _cstr(body: memoryview, start: int = 0) -> tuple[str, int]:
    """The NUL-terminated name at ``start`` and the offset after it."""
    raw = bytes(body[start:])
    end = raw.index(b"\0")
    return raw[:end].decode("utf-8", "surrogateescape"), start + end + 1


class Operations:
    """One handler per opcode (``dispatch``); see the module docstring."""

    def __init__(self, core: HdfsFilesystem, nodes: NodeTable):
        self.core = core
        self.nodes = nodes
        self.ttl = _split(float(core.opts.metadata_ttl))
        self.read_only = core.read_only
        self._core_fh: dict[int, int] = {}      # kernel handle -> core handle
        self._lost: set[int] = set()             # write handles a dead daemon held
        self._dirs: dict[int, list[tuple[str, int]]] = {}
        self._next_dir = 1
        self._lock = threading.Lock()
        self._local = threading.local()
        m = core.metrics
        self._metrics = m
        self._hist: dict[str, Any] = {}
        self._table: dict[int, Callable[[Request], Any]] = {
            k.LOOKUP: self.lookup, k.FORGET: self.forget, k.BATCH_FORGET: self.batch_forget,
            k.GETATTR: self.getattr, k.SETATTR: self.setattr, k.OPEN: self.open,
            k.CREATE: self.create, k.READ: self.read, k.WRITE: self.write,
            k.FLUSH: self.flush, k.FSYNC: self.fsync, k.RELEASE: self.release,
            k.OPENDIR: self.opendir, k.READDIR: self.readdir, k.RELEASEDIR: self.releasedir,
            k.FSYNCDIR: self.fsyncdir, k.STATFS: self.statfs, k.MKDIR: self.mkdir,
            k.UNLINK: self.unlink, k.RMDIR: self.rmdir, k.RENAME: self.rename,
            k.RENAME2: self.rename2, k.INTERRUPT: self.interrupt, k.DESTROY: self.destroy,
        }

    def dispatch(self, opcode: int) -> Callable[[Request], Any] | None:
        fn = self._table.get(opcode)
        if fn is None:
            return None
        name = k.OPCODE_NAMES.get(opcode, str(opcode))
        hist = self._hist.get(name)
        if hist is None:
            hist = self._hist[name] = self._metrics.requests.labels(name)

        def call(req: Request) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(req)
            except ReplyError:
                raise
            except BaseException as exc:  # noqa: BLE001 - every failure becomes an errno
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                code = errno_for(exc)
                self._metrics.errors.labels(name, errno.errorcode.get(code, str(code))).inc()
                level = logging.DEBUG if code in QUIET_ERRNOS else logging.WARNING
                log.log(level, "%s(node %d) -> %s: %s", name, req.nodeid,
                        errno.errorcode.get(code, code), exc,
                        exc_info=code == errno.EIO and not isinstance(exc, HdfsError))
                raise ReplyError(code) from None
            finally:
                hist.observe(time.perf_counter() - t0)
        return call

    # -- takeover ------------------------------------------------------------------------
    def adopt(self) -> None:
        """After a takeover: the write handles of the dead daemon are lost; a file one of
        them was creating is deleted (see the module docstring)."""
        for rec in list(self.nodes.handles.values()):
            if rec.kind == "l":          # given up by an earlier successor already
                self._lost.add(rec.fh)
                continue
            if rec.kind != "w":
                continue
            self._lost.add(rec.fh)
            if rec.finished:
                continue
            self.nodes.lost(rec.fh)
            if rec.flags & (os.O_CREAT | os.O_TRUNC):
                log.warning("the daemon died while %s was being written; deleting the "
                            "incomplete file (its writer gets EIO)", rec.path)
                try:
                    self.core.unlink(rec.path)
                except BaseException as exc:  # noqa: BLE001
                    log.warning("could not delete %s: %s", rec.path, exc)
            else:
                log.warning("the daemon died while %s was being written; its writer "
                            "gets EIO; the file may hold part of those writes", rec.path)

    # -- helpers -------------------------------------------------------------------------
    def _path(self, nodeid: int) -> str:
        path = self.nodes.path(nodeid)
        if path is None:
            raise ReplyError(errno.ESTALE)
        return path

    def _child(self, req: Request) -> str:
        name, _ = _cstr(req.body)
        return self._named(req.nodeid, name)

    def _named(self, parent: int, name: str) -> str:
        path = self.nodes.child(parent, name)
        if path is None:
            raise ReplyError(errno.ESTALE)
        if "/" in name or name in ("", ".", ".."):
            raise ReplyError(errno.EINVAL)
        return path

    def _attr(self, nodeid: int, a: Attr) -> bytes:
        asec, ansec = divmod(a.atime_ns, 1_000_000_000)
        msec, mnsec = divmod(a.mtime_ns, 1_000_000_000)
        return k.ATTR.pack(nodeid, a.size, a.blocks, asec, msec, msec, ansec, mnsec, mnsec,
                           a.mode, a.nlink, a.uid, a.gid, 0, a.blksize, 0)

    def _entry(self, path: str, a: Attr) -> bytes:
        nodeid = self.nodes.lookup(path)
        sec, nsec = self.ttl
        return k.ENTRY_OUT.pack(nodeid, 0, sec, sec, nsec, nsec) + self._attr(nodeid, a)

    def _attr_out(self, nodeid: int, a: Attr) -> bytes:
        sec, nsec = self.ttl
        return k.ATTR_OUT.pack(sec, nsec, 0) + self._attr(nodeid, a)

    def _fh(self, kfh: int) -> int:
        """The core's handle for kernel handle ``kfh``; a read handle of a dead daemon is
        opened again here."""
        fh = self._core_fh.get(kfh)
        if fh is not None:
            return fh
        if kfh in self._lost:
            raise ReplyError(errno.EIO)
        rec = self.nodes.handles.get(kfh)
        if rec is None or rec.kind != "r":
            raise ReplyError(errno.EBADF)
        with self._lock:
            fh = self._core_fh.get(kfh)
            if fh is None:
                fh = self._core_fh[kfh] = self.core.open(rec.path, rec.flags)
        return fh

    # -- metadata ------------------------------------------------------------------------
    def lookup(self, req: Request) -> bytes:
        path = self._child(req)
        try:
            a = self.core.getattr(path)
        except BaseException as exc:  # noqa: BLE001
            if errno_for(exc) == errno.ENOENT and self.ttl != (0, 0):
                # a negative entry the kernel keeps for the metadata TTL (node id 0)
                self._metrics.errors.labels("lookup", "ENOENT").inc()
                sec, nsec = self.ttl
                return k.ENTRY_OUT.pack(0, 0, sec, 0, nsec, 0) + bytes(k.ATTR.size)
            raise
        return self._entry(path, a)

    def forget(self, req: Request) -> None:
        (n,) = k.FORGET_IN.unpack_from(req.body)
        self.nodes.forget(req.nodeid, n)

    def batch_forget(self, req: Request) -> None:
        count, _ = k.BATCH_FORGET_IN.unpack_from(req.body)
        off = k.BATCH_FORGET_IN.size
        for _ in range(count):
            nodeid, n = k.FORGET_ONE.unpack_from(req.body, off)
            off += k.FORGET_ONE.size
            self.nodes.forget(nodeid, n)

    def getattr(self, req: Request) -> bytes:
        flags, _, kfh = k.GETATTR_IN.unpack_from(req.body)
        path = self._path(req.nodeid)
        fh = None
        if flags & k.GETATTR_FH and kfh in self._core_fh:
            fh = self._core_fh[kfh]
        return self._attr_out(req.nodeid, self.core.getattr(path, fh))

    def setattr(self, req: Request) -> bytes:
        (valid, _, kfh, size, _lock, atime, mtime, _ctime, atimensec, mtimensec, _ctimensec,
         mode, _u4, uid, gid, _u5) = k.SETATTR_IN.unpack_from(req.body)
        path = self._path(req.nodeid)
        if valid & k.FATTR_MODE:
            self.core.chmod(path, mode)
        if valid & (k.FATTR_UID | k.FATTR_GID):
            self.core.chown(path, uid if valid & k.FATTR_UID else -1,
                            gid if valid & k.FATTR_GID else -1)
        if valid & k.FATTR_SIZE:
            fh = self._fh(kfh) if valid & k.FATTR_FH else None
            self.core.truncate(path, size, fh)
        if valid & (k.FATTR_ATIME | k.FATTR_MTIME):
            from fuse_mount.fs import UTIME_OMIT

            def ns(bit: int, now_bit: int, sec: int, nsec: int) -> int | None:
                if valid & now_bit:
                    return None
                if valid & bit:
                    return sec * 1_000_000_000 + nsec
                return UTIME_OMIT
            self.core.utimens(path, ns(k.FATTR_ATIME, k.FATTR_ATIME_NOW, atime, atimensec),
                              ns(k.FATTR_MTIME, k.FATTR_MTIME_NOW, mtime, mtimensec))
        return self._attr_out(req.nodeid, self.core.getattr(path))

    def statfs(self, req: Request) -> bytes:
        s = self.core.statfs()
        return k.STATFS_OUT.pack(s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize,
                                 s.namemax, s.frsize)

    # -- directories ---------------------------------------------------------------------
    def opendir(self, req: Request) -> bytes:
        path = self._path(req.nodeid)
        entries = self.core.readdir(path)
        with self._lock:
            dh = self._next_dir
            self._next_dir += 1
            self._dirs[dh] = entries
        return k.OPEN_OUT.pack(dh, 0, 0)

    def readdir(self, req: Request) -> bytes:
        dh, offset, size, *_ = k.READ_IN.unpack_from(req.body)
        entries = self._dirs.get(dh)
        if entries is None:   # a directory handle of a dead daemon: list again
            entries = self.core.readdir(self._path(req.nodeid))
            with self._lock:
                self._dirs[dh] = entries
        out = bytearray()
        for i in range(offset, len(entries)):
            name, mode = entries[i]
            raw = name.encode("utf-8", "surrogateescape")
            rec = k.dirent_size(len(raw))
            if len(out) + rec > size:
                break
            out += k.DIRENT.pack(0xFFFFFFFF, i + 1, len(raw), stat.S_IFMT(mode) >> 12)
            out += raw + bytes(rec - k.DIRENT.size - len(raw))
        return bytes(out)

    def releasedir(self, req: Request) -> None:
        dh = k.RELEASE_IN.unpack_from(req.body)[0]
        with self._lock:
            self._dirs.pop(dh, None)

    def fsyncdir(self, req: Request) -> None:
        return None

    # -- files ---------------------------------------------------------------------------
    def _open_reply(self, kfh: int, fh: int, writing: bool) -> bytes:
        flags = 0
        if self.core.wants_direct_io(fh):
            flags |= k.FOPEN_DIRECT_IO
        if self.core.keep_cache(fh):
            flags |= k.FOPEN_KEEP_CACHE
        if not writing:
            flags |= FOPEN_NOFLUSH   # close(2) of a reader needs no round trip
        return k.OPEN_OUT.pack(kfh, flags, 0)

    def open(self, req: Request) -> bytes:
        flags, _ = k.OPEN_IN.unpack_from(req.body)
        path = self._path(req.nodeid)
        fh = self.core.open(path, flags)
        writing = flags & os.O_ACCMODE != os.O_RDONLY
        kfh = self.nodes.new_handle("w" if writing else "r", flags, path)
        self._core_fh[kfh] = fh
        return self._open_reply(kfh, fh, writing)

    def create(self, req: Request) -> bytes:
        flags, mode, umask, _ = k.CREATE_IN.unpack_from(req.body)
        name, _ = _cstr(req.body, k.CREATE_IN.size)
        path = self._named(req.nodeid, name)
        fh = self.core.create(path, mode & ~umask, flags)
        kfh = self.nodes.new_handle("w", flags | os.O_CREAT, path)
        self._core_fh[kfh] = fh
        return self._entry(path, self.core.getattr(path, fh)) + self._open_reply(kfh, fh, True)

    def read(self, req: Request) -> Any:
        """From the disk cache (checked) into this worker's buffer, which is free again
        once the reply is written; otherwise whatever the read path returns (often a
        view of a read-ahead buffer): written to /dev/fuse with no copy in between."""
        kfh, offset, size, *_ = k.READ_IN.unpack_from(req.body)
        fh = self._fh(kfh)
        if self.core.cache is not None:
            buf = getattr(self._local, "buf", None)
            if buf is None:
                buf = self._local.buf = memoryview(mmap.mmap(-1, MAX_WRITE))
            data = self.core.read_cached(fh, size, offset, buf if size <= len(buf) else None)
            if data is not None:
                return data
        return self.core.read(fh, size, offset)

    def write(self, req: Request) -> bytes:
        kfh, offset, size, *_ = k.WRITE_IN.unpack_from(req.body)
        data = bytes(req.body[k.WRITE_IN.size:k.WRITE_IN.size + size])
        n = self.core.write(self._fh(kfh), data, offset)
        return k.WRITE_OUT.pack(n, 0)

    def flush(self, req: Request) -> None:
        kfh = k.FLUSH_IN.unpack_from(req.body)[0]
        rec = self.nodes.handles.get(kfh)
        if kfh in self._lost and kfh not in self._core_fh:
            if rec is not None and rec.finished:
                return None
            raise ReplyError(errno.EIO)
        self.core.flush(self._fh(kfh))
        if rec is not None and rec.kind == "w":
            self.nodes.finished(kfh)
        return None

    def fsync(self, req: Request) -> None:
        kfh = k.FSYNC_IN.unpack_from(req.body)[0]
        self.core.fsync(self._fh(kfh), bool(k.FSYNC_IN.unpack_from(req.body)[1] & 1))

    def release(self, req: Request) -> None:
        kfh = k.RELEASE_IN.unpack_from(req.body)[0]
        fh = self._core_fh.pop(kfh, None)
        try:
            if fh is not None:
                self.core.release(fh)
        finally:
            self._lost.discard(kfh)
            self.nodes.close_handle(kfh)

    # -- namespace -----------------------------------------------------------------------
    def mkdir(self, req: Request) -> bytes:
        mode, umask = k.MKDIR_IN.unpack_from(req.body)
        name, _ = _cstr(req.body, k.MKDIR_IN.size)
        path = self._named(req.nodeid, name)
        self.core.mkdir(path, mode & ~umask)
        return self._entry(path, self.core.getattr(path))

    def unlink(self, req: Request) -> None:
        path = self._child(req)
        self.core.unlink(path)
        self.nodes.detach(path)

    def rmdir(self, req: Request) -> None:
        path = self._child(req)
        self.core.rmdir(path)
        self.nodes.detach(path)

    def rename(self, req: Request) -> None:
        (newdir,) = k.RENAME_IN.unpack_from(req.body)
        self._rename(req, newdir, 0, k.RENAME_IN.size)

    def rename2(self, req: Request) -> None:
        newdir, flags, _ = k.RENAME2_IN.unpack_from(req.body)
        self._rename(req, newdir, flags, k.RENAME2_IN.size)

    def _rename(self, req: Request, newdir: int, flags: int, start: int) -> None:
        if flags & ~RENAME_NOREPLACE:
            raise FsError(errno.EINVAL, "only RENAME_NOREPLACE is supported")
        old_name, after = _cstr(req.body, start)
        new_name, _ = _cstr(req.body, after)
        old, new = self._named(req.nodeid, old_name), self._named(newdir, new_name)
        if flags & RENAME_NOREPLACE:
            try:
                self.core.getattr(new)
                raise FsError(errno.EEXIST)
            except FsError:
                raise
            except BaseException as exc:  # noqa: BLE001
                if errno_for(exc) != errno.ENOENT:
                    raise
        self.core.rename(old, new)
        self.nodes.rename(old, new)

    def interrupt(self, req: Request) -> None:
        return None   # HDFS calls cannot be cancelled; the answer comes when it is ready

    def destroy(self, req: Request) -> None:
        return None
