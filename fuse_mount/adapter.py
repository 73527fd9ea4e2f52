"""mfusepy adapter: FUSE callbacks -> :class:`fuse_mount.fs.HdfsFilesystem`.

Deliberately thin: convert types (dataclasses to mfusepy's dicts), time each
request, turn every exception into an errno through the one table in
:mod:`fuse_mount.errors`, and hand read replies to libfuse as buffers it
sends itself (``read_buf``: a pipe filled by splice, or ``malloc``-ed
memory; the ctypes side of those buffers is :mod:`fuse_mount.reply_buffers`).
No filesystem decision is made here.

Why mfusepy (ctypes over libfuse3's high-level API) and not pyfuse3: measured
on this code base's target machine, a null filesystem served 1 MiB requests at
1.3-3 GB/s through mfusepy, an order of magnitude above what one HDFS client
stream delivers, so the binding is not the bottleneck; and the high-level API
gives us path-based callbacks for free.  (Its ``auto_cache``, keep the page
cache while size and mtime are unchanged, was used until it served a file
rewritten with its mtime restored from the old file's pages: the core now
decides ``keep_cache`` per open by file identity.)
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import mmap
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import mfusepy

from fuse_mount.errors import QUIET_ERRNOS, errno_for
from fuse_mount.fs import Attr, HdfsFilesystem
from fuse_mount.options import MountOptions
from fuse_mount.reply_buffers import (
    FUSE_CAP_SPLICE_WRITE, MAX_REQUEST, PAGE, SPLICE_MIN, ReplyPipe, libc, malloc_view,
    set_reply_buffer, splice_max_read, splices, vmsplice_all,
)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_pinned_threads: set[int] = set()


def _keep_thread_state() -> None:
    """Give the calling libfuse worker thread one Python thread state for good.

    libfuse starts its worker threads itself, so every ctypes callback on
    them would otherwise create a Python thread state and delete it again on
    return (``PyGILState_Ensure``/``Release`` with nothing else holding it):
    about 8 us per call, measured here, several calls per small file opened,
    and ``threading.local`` data would not survive from one call to the next.
    One extra ``PyGILState_Ensure`` per thread keeps the state alive until the
    thread ends (the workers live as long as the mount: see
    :func:`fuse_mount_options`).
    """
    ident = threading.get_ident()
    if ident not in _pinned_threads:
        ctypes.pythonapi.PyGILState_Ensure()
        _pinned_threads.add(ident)


def _op(name: str) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def call(self: FuseAdapter, *args: Any) -> Any:
            _keep_thread_state()
            self._local.held = None  # this thread's previous reply has been sent: see read_buf
            t0 = time.perf_counter()
            try:
                return fn(self, *args)
            except mfusepy.FuseOSError:
                raise
            except BaseException as exc:  # noqa: BLE001 - every failure becomes an errno
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                code = errno_for(exc)
                self._errors(name, code)
                level = logging.DEBUG if code in QUIET_ERRNOS else logging.WARNING
                log.log(level, "%s%r -> %s: %s", name, _short(args),
                        errno.errorcode.get(code, code),
                        exc, exc_info=code == errno.EIO and not _is_hdfs(exc))
                raise mfusepy.FuseOSError(code) from None
            finally:
                self._hist[name].observe(time.perf_counter() - t0)
        return call  # type: ignore[return-value]
    return wrap


def _short(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(f"<{len(a)} bytes>" if isinstance(a, (bytes, bytearray)) else a for a in args)


def _is_hdfs(exc: BaseException) -> bool:
    from hdfs_client.errors import HdfsError
    return isinstance(exc, HdfsError)


def _not_registered(*_args: Any) -> None:  # pragma: no cover - never called by mfusepy
    raise mfusepy.FuseOSError(errno.EROFS)


_not_registered.libfuse_ignore = True  # type: ignore[attr-defined]
_WRITE_OPS = ("create", "write", "flush", "fsync", "truncate", "mkdir", "rmdir", "unlink",
              "rename", "chmod", "chown", "utimens")

_OPS = ("getattr", "readdir", "open", "create", "read", "write", "flush", "fsync", "release",
        "truncate", "mkdir", "rmdir", "unlink", "rename", "chmod", "chown", "utimens", "statfs")


class FuseAdapter(mfusepy.Operations):
    use_ns = True  # times as integer nanoseconds (the float API is deprecated)

    def __init__(self, core: HdfsFilesystem, options: MountOptions):
        self.core = core
        self.opts = options
        self._splice = splices(options)
        self._max_read = splice_max_read() if self._splice else MAX_REQUEST
        # one page more for data that does not start on a page boundary
        self._pipe_bytes = self._max_read + PAGE
        self._local = threading.local()  # per libfuse worker: see _keep_thread_state
        self._pipes: list[ReplyPipe] = []
        self._pipes_lock = threading.Lock()
        m = core.metrics
        self._hist = {op: m.requests.labels(op) for op in _OPS}
        self._errors = lambda op, code: m.errors.labels(
            op, errno.errorcode.get(code, str(code))).inc()
        if options.read_only:
            # Leave write-side callbacks unset: the kernel (mounted "ro") refuses changes
            # itself, and once FLUSH is answered ENOSYS it stops sending it, which saves
            # a round trip on every close(2): many small files = many closes.
            for name in _WRITE_OPS:
                setattr(self, name, _not_registered)

    # -- set-up ---------------------------------------------------------------------------
    def init_with_config(self, conn: Any, config: Any) -> None:
        ttl = float(self.opts.metadata_ttl)
        if config is not None:
            config.entry_timeout = ttl
            config.attr_timeout = ttl
            config.negative_timeout = ttl
            # The kernel keeps a file's pages across opens while its identity (HDFS
            # file id, length, mtime) is unchanged: re-reads at memory speed.  The
            # core decides per open (keep_cache); libfuse's auto_cache compared only
            # size and mtime, which a rewrite with its mtime restored keeps.
            config.auto_cache = 0
            config.kernel_cache = 0
            config.direct_io = 0
        if conn is not None:
            # Replies spliced from the disk cache reach /dev/fuse by splice(2) too,
            # not through a buffer libfuse reads them into first.
            if self._splice and conn.capable & FUSE_CAP_SPLICE_WRITE:
                conn.want |= FUSE_CAP_SPLICE_WRITE
            if self._splice:
                conn.max_read = self._max_read  # libfuse insists it equals the -o max_read
            # Kernel read-ahead requests are "background" requests; the kernel default
            # of 12 in flight caps parallelism below what our FUSE threads can serve.
            conn.max_background = 64
            conn.congestion_threshold = 48
            log.info("FUSE connection: max_write=%d max_readahead=%d proto %d.%d "
                     "capable=%#x want=%#x", conn.max_write, conn.max_readahead,
                     conn.proto_major, conn.proto_minor, conn.capable, conn.want)

    def destroy(self, path: str) -> None:
        log.info("FUSE session ends")
        with self._pipes_lock:
            pipes, self._pipes = self._pipes, []
        for pipe in pipes:
            pipe.close()

    # -- metadata -------------------------------------------------------------------------
    @_op("getattr")
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        return _stat_dict(self.core.getattr(path, fh))

    @_op("readdir")
    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, int], int]]:
        return [(name, {"st_mode": mode}, 0) for name, mode in self.core.readdir(path)]

    @_op("statfs")
    def statfs(self, path: str) -> dict[str, int]:
        s = self.core.statfs()
        return {"f_bsize": s.bsize, "f_frsize": s.frsize, "f_blocks": s.blocks,
                "f_bfree": s.bfree, "f_bavail": s.bavail, "f_files": s.files,
                "f_ffree": s.ffree, "f_favail": s.ffree, "f_namemax": s.namemax}

    # -- data -----------------------------------------------------------------------------
    @_op("open")
    def open(self, path: str, flags: int) -> int:
        return self.core.open(path, flags)

    @_op("create")
    def create(self, path: str, mode: int, flags: int) -> int:
        return self.core.create(path, mode, flags)

    @_op("read")
    def read_buf(self, path: str | None, bufpp: Any, size: int, offset: int, fh: int) -> int:
        """libfuse's ``read_buf``: the reply as a buffer libfuse sends itself.

        With splice on (a disk cache), every reply of two pages or more goes
        into this thread's pipe with ``vmsplice`` (its pages by reference) and
        libfuse splices the pipe into ``/dev/fuse``: libfuse 3.14 splices every
        reply that size once splice is on, and would otherwise write a memory
        buffer into its pipe first, one more copy.  A read the disk cache holds
        is read into this thread's reply buffer, checked against its CRCs
        (:meth:`HdfsFilesystem.read_cached`), and vmspliced from there; other
        data from the read-ahead buffer it is in.  The object stays referenced
        (``_local.held``) until this thread's next callback: libfuse sends a
        reply before its worker takes the next request, so by then the pipe
        has been drained and the thread's buffer may be filled again.  At most
        one such object per worker thread.  Without splice (no disk cache),
        data is copied once into memory from ``malloc``, what libfuse's plain
        ``read`` path allocates too.

        (Cache hits were once spliced straight from the cache file, never
        entering this process; checking them means reading them.  The cost is
        in BENCHMARKS.md, "cache verification cost".)
        """
        if size > 0 and self._splice:
            pipe = self._reply_pipe(size)
            if pipe is not None:
                buf = self._cache_buffer()
                data = self.core.read_cached(fh, size, offset, buf if size <= len(buf) else None)
                cached = data is not None
                if data is None:
                    data = self.core.read(fh, size, offset)
                if len(data) >= SPLICE_MIN and vmsplice_all(pipe.w, data):
                    self._local.held = data  # its pages are in the pipe until libfuse sends it
                    if cached:
                        self.core.metrics.bytes_spliced.inc(len(data))
                    set_reply_buffer(bufpp, size=len(data), fd=pipe.r)
                    return 0
                if pipe.pending():
                    self._replace_pipe(pipe)
                return self._copy_reply(bufpp, data)
        mem, out = malloc_view(size)
        try:
            n = self.core.read_into(fh, out, offset) if size > 0 else 0
        except BaseException:
            libc.free(mem)
            raise
        set_reply_buffer(bufpp, size=n, mem=mem)
        return 0

    def _copy_reply(self, bufpp: Any, data: bytes | bytearray | memoryview) -> int:
        mem, out = malloc_view(len(data))
        out[:] = data
        set_reply_buffer(bufpp, size=len(data), mem=mem)
        return 0

    def _cache_buffer(self) -> memoryview:
        """This worker's buffer for replies read from the disk cache (page aligned,
        the largest request), reused from one request to the next."""
        buf: memoryview | None = getattr(self._local, "cache_buf", None)
        if buf is None:
            buf = self._local.cache_buf = memoryview(mmap.mmap(-1, self._max_read))
        return buf

    def _reply_pipe(self, size: int) -> ReplyPipe | None:
        pipe: ReplyPipe | None = getattr(self._local, "pipe", None)
        if pipe is None:
            pipe = ReplyPipe(self._pipe_bytes)
            with self._pipes_lock:
                self._pipes.append(pipe)
            self._local.pipe = pipe
        elif pipe.pending():
            pipe = self._replace_pipe(pipe)
        return pipe if pipe.capacity >= size else None

    def _replace_pipe(self, old: ReplyPipe) -> ReplyPipe:
        log.debug("reply pipe held %d stale bytes; replaced", old.pending())
        new = ReplyPipe(self._pipe_bytes)
        with self._pipes_lock:
            self._pipes.remove(old)
            self._pipes.append(new)
        old.close()
        self._local.pipe = new
        return new

    @_op("write")
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return self.core.write(fh, data, offset)

    @_op("flush")
    def flush(self, path: str, fh: int) -> int:
        self.core.flush(fh)
        return 0

    @_op("fsync")
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self.core.fsync(fh, bool(datasync))
        return 0

    @_op("release")
    def release(self, path: str, fh: int) -> int:
        self.core.release(fh)
        return 0

    @_op("truncate")
    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        self.core.truncate(path, length, fh)
        return 0

    # -- namespace ------------------------------------------------------------------------
    @_op("mkdir")
    def mkdir(self, path: str, mode: int) -> int:
        self.core.mkdir(path, mode)
        return 0

    @_op("rmdir")
    def rmdir(self, path: str) -> int:
        self.core.rmdir(path)
        return 0

    @_op("unlink")
    def unlink(self, path: str) -> int:
        self.core.unlink(path)
        return 0

    @_op("rename")
    def rename(self, old: str, new: str) -> int:
        self.core.rename(old, new)
        return 0

    @_op("chmod")
    def chmod(self, path: str, mode: int) -> int:
        self.core.chmod(path, mode)
        return 0

    @_op("chown")
    def chown(self, path: str, uid: int, gid: int) -> int:
        self.core.chown(path, uid, gid)
        return 0

    @_op("utimens")
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        atime, mtime = times if times is not None else (None, None)
        self.core.utimens(path, atime, mtime)
        return 0


class HdfsFUSE(mfusepy.FUSE):
    """mfusepy's FUSE with two callbacks of our own.

    ``read_buf`` hands libfuse a buffer it sends itself (:meth:`FuseAdapter.read_buf`);
    mfusepy's ``read`` wants ``bytes``, which costs an extra copy of every
    byte, and for the disk cache an extra ``bytes`` object per request.
    ``open`` lets the core choose per-handle kernel caching (``direct_io``, and
    ``keep_cache`` by file identity instead of libfuse's ``auto_cache``).
    """

    def open(self, path: bytes, fip: Any) -> int:
        fi = fip.contents
        fi.fh = fh = self.operations.open(path.decode(self.encoding, self.errors), fi.flags)
        core = self.operations.core
        if core.wants_direct_io(fh):
            fi.direct_io = 1
        fi.keep_cache = 1 if core.keep_cache(fh) else 0
        return 0

    def read_buf(self, path: bytes | None, bufpp: Any, size: int, offset: int, fip: Any) -> int:
        return self.operations.read_buf(None, bufpp, size, offset, fip.contents.fh)


def _stat_dict(a: Attr) -> dict[str, Any]:
    return {
        "st_mode": a.mode, "st_size": a.size, "st_uid": a.uid, "st_gid": a.gid,
        "st_nlink": a.nlink, "st_mtime": a.mtime_ns, "st_atime": a.atime_ns,
        "st_ctime": a.mtime_ns, "st_blksize": a.blksize, "st_blocks": a.blocks,
    }


def fuse_mount_options(options: MountOptions, source: str, is_root: bool) -> dict[str, Any]:
    """Keyword arguments for :class:`mfusepy.FUSE` (its ``-o`` options)."""
    kw: dict[str, Any] = {
        "foreground": True,
        "nothreads": False,                 # multithreaded loop: concurrent readers
        "fsname": source.replace(",", "%2C"),  # shows in mount/df; commas would split -o
        "subtype": "hdfs",                  # fstype "fuse.hdfs"
        # Workers never retire: libfuse would otherwise end every worker above
        # max_idle_threads after each burst and start new ones for the next (a
        # new thread, a fresh 1 MiB request buffer and its page faults, a new
        # Python thread state).  With _keep_thread_state: mount CPU per GiB read
        # 1.82 -> 1.69 x the direct client's (8 interleaved rounds).
        "max_threads": options.fuse_threads,
        "max_idle_threads": options.fuse_threads,
    }
    if splices(options):
        kw["max_read"] = splice_max_read()
    if options.read_only:
        kw["ro"] = True
    allow_other = options.allow_other if options.allow_other is not None else is_root
    if allow_other:
        kw["allow_other"] = True
    return kw
