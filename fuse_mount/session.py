"""Our own ``/dev/fuse`` request loop: read requests, hand them to the operations
(:class:`fuse_mount.lowlevel.Operations`), write the replies.

Why not libfuse: a new daemon taking over a live connection gets no second
INIT, and libfuse cannot serve a connection it did not initialise itself
(``../shared/docs/fuse-takeover.md``).  This loop can: :class:`Connection`
is what INIT negotiated, written to the takeover directory by the first
daemon and read back by every successor, which then asks the kernel to send
again what the dead daemon had read but not answered (``FUSE_NOTIFY_RESEND``).

Threads: ``threads`` workers each block in ``read(2)`` on the descriptor,
one request into their own buffer, so up to that many requests are served
at once (HDFS calls release the GIL).  Blocking reads, not ``poll``: the
kernel wakes exactly one blocked reader per request, but every poller.  The
read is libc's, through ctypes, because ``os.read`` retries after EINTR: to
stop the workers between requests (:meth:`Session.drain`, a handover to a
new daemon, which waits only for requests in flight, never for the next one
to arrive), each blocked worker is sent ``SIGUSR2`` and its read returns.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from fuse_mount import kernel_abi as k

log = logging.getLogger(__name__)

WANTED_FLAGS = (k.ASYNC_READ | k.ATOMIC_O_TRUNC | k.BIG_WRITES | k.AUTO_INVAL_DATA
                | k.ASYNC_DIO | k.PARALLEL_DIROPS | k.MAX_PAGES | k.INIT_EXT
                | k.DIRECT_IO_ALLOW_MMAP)
MAX_WRITE = 1 << 20
PAGE = 4096
# a request: header, the largest op header (WRITE's), then up to max_write bytes
REQUEST_BUFFER = MAX_WRITE + PAGE
WAKE_SIGNAL = signal.SIGUSR2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.read.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)
_libc.read.restype = ctypes.c_ssize_t


class ReplyError(Exception):
    """Raised by an operation to answer with ``-errno``."""

    def __init__(self, code: int):
        super().__init__(code)
        self.errno = code


@dataclass
class Connection:
    """What INIT negotiated; a daemon taking over the connection must know it."""
    minor: int
    flags: int            # flags | flags2 << 32, as both sides agreed
    kernel_flags: int     # what the kernel offered (e.g. HAS_RESEND)
    max_write: int
    max_readahead: int

    def save(self, path: str) -> None:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(asdict(self), fh)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> Connection:
        with open(path) as fh:
            return cls(**json.load(fh))


@dataclass
class Request:
    opcode: int
    unique: int
    nodeid: int
    uid: int
    gid: int
    pid: int
    body: memoryview      # the request after its header (valid until the reply is sent)


Handler = Callable[[Request], Any]


class Session:
    """Serves one FUSE connection with ``threads`` workers until it ends or is drained."""

    def __init__(self, fd: int, dispatch: Callable[[int], Handler | None], *, threads: int,
                 connection: Connection | None = None,
                 on_init: Callable[[Connection], None] | None = None,
                 max_background: int = 64):
        self.fd = fd
        self.dispatch = dispatch
        self.threads = threads
        self.conn = connection
        self.on_init = on_init
        self.max_background = max_background
        self._init_done = threading.Event()
        if connection is not None:
            self._init_done.set()
        self._stopping = False
        self._ended = threading.Event()
        self._workers: list[threading.Thread] = []
        #: idents of the workers still inside :meth:`_work`; a worker leaves it under
        #: ``_live_lock``, so one found here while the lock is held is a live thread
        self._live: set[int] = set()
        self._live_lock = threading.Lock()
        os.set_blocking(fd, True)
        if threading.current_thread() is threading.main_thread():
            # a Python handler makes the signal interrupt read(2) (no SA_RESTART)
            signal.signal(WAKE_SIGNAL, lambda *_: None)

    # -- life cycle --------------------------------------------------------------------------
    def resend(self) -> None:
        """Ask the kernel for the requests a dead daemon read and never answered."""
        if self.conn is not None and self.conn.kernel_flags & k.HAS_RESEND:
            try:
                os.write(self.fd, k.OUT_HEADER.pack(k.OUT_HEADER.size, k.NOTIFY_RESEND, 0))
                log.info("asked the kernel to resend unanswered requests")
            except OSError as exc:
                log.warning("FUSE_NOTIFY_RESEND failed: %s", exc)
        else:
            log.warning("this kernel cannot resend requests (no FUSE_HAS_RESEND); "
                        "requests the dead daemon had read are lost")

    def start(self) -> None:
        for i in range(self.threads):
            t = threading.Thread(target=self._work, name=f"fuse-{i}", daemon=True)
            t.start()
            self._workers.append(t)

    def wait(self) -> None:
        """Block until the connection ends (unmount) or :meth:`drain` finished."""
        self._ended.wait()
        for t in self._workers:
            t.join()

    def drain(self) -> None:
        """Stop taking requests; return once the requests in flight are answered."""
        self._stopping = True
        self._wake_all()
        self._ended.set()

    def _wake_all(self) -> None:
        """Interrupt every worker's read(2) until it has left :meth:`_work`.

        ``pthread_kill`` on a thread that has just exited touches freed memory
        (its ``pthread_t``): at an unmount, when every worker reads ENODEV and
        returns on its own while this runs, that crashed the daemon with SIGSEGV
        about one unmount in ten (before its cleanup: cache directives stayed).
        So a worker is signalled only while it is registered in ``_live``, with
        the lock held that it must take to leave."""
        for t in self._workers:
            while t.is_alive() and t is not threading.current_thread():
                with self._live_lock:
                    if t.ident in self._live:
                        signal.pthread_kill(t.ident, WAKE_SIGNAL)
                t.join(0.01)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def wait_ended(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the end (short waits let signal handlers run)."""
        return self._ended.wait(timeout)

    # -- the loop ----------------------------------------------------------------------------
    def _work(self) -> None:
        me = threading.get_ident()
        with self._live_lock:
            self._live.add(me)
        try:
            self._loop()
        finally:
            with self._live_lock:
                self._live.discard(me)

    def _loop(self) -> None:
        buf = bytearray(REQUEST_BUFFER)
        view = memoryview(buf)
        addr = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
        while not self._stopping:
            n = _libc.read(self.fd, addr, len(buf))
            if n < 0:
                code = ctypes.get_errno()
                if code in (errno.EINTR, errno.EAGAIN, errno.ENOENT):
                    continue   # woken (drain), or a request interrupted before we read it
                if code != errno.ENODEV:
                    log.error("reading /dev/fuse failed: %s", os.strerror(code))
                self._end()
                return
            if n == 0:
                self._end()
                return
            try:
                self._serve(view[:n])
            except Exception:  # noqa: BLE001 - one malformed request must not end the worker
                log.exception("a malformed FUSE request")

    def _end(self) -> None:
        """The connection is gone (unmounted or aborted): every worker stops."""
        if not self._stopping:
            self._stopping = True
            threading.Thread(target=self._wake_all, name="fuse-end", daemon=True).start()
        self._ended.set()

    def _serve(self, data: memoryview) -> None:
        length, opcode, unique, nodeid, uid, gid, pid, _ext, _pad = k.IN_HEADER.unpack_from(data)
        req = Request(opcode, unique, nodeid, uid, gid, pid, data[k.IN_HEADER.size:length])
        if opcode == k.INIT:
            self._init(req)
            return
        if opcode in (k.FORGET, k.BATCH_FORGET, k.INTERRUPT):
            handler = self.dispatch(opcode)
            if handler is not None:
                handler(req)   # no reply: the kernel expects none
            return
        if not self._init_done.is_set():
            self._init_done.wait()
        handler = self.dispatch(opcode)
        if handler is None:
            self.reply_error(unique, errno.ENOSYS)
            return
        try:
            reply = handler(req)
        except ReplyError as exc:
            self.reply_error(unique, exc.errno)
            return
        except Exception:  # noqa: BLE001 - the caller must get an answer, not hang
            log.exception("FUSE %s failed", k.OPCODE_NAMES.get(opcode, opcode))
            self.reply_error(unique, errno.EIO)
            return
        if opcode == k.DESTROY:
            self.reply(unique)
            self._end()
            return
        if reply is None:
            self.reply(unique)
        elif isinstance(reply, list):
            self.reply(unique, *reply)
        else:
            self.reply(unique, reply)

    def _init(self, req: Request) -> None:
        major, minor, max_readahead, flags, flags2 = k.INIT_IN.unpack_from(req.body)
        if major != k.KERNEL_VERSION:
            log.error("kernel speaks FUSE %d.%d; we speak 7.x", major, minor)
            self.reply_error(req.unique, errno.EPROTO)
            return
        offered = flags | ((flags2 << 32) if flags & k.INIT_EXT else 0)
        agreed = offered & WANTED_FLAGS
        out_minor = min(minor, k.KERNEL_MINOR)
        conn = Connection(minor=out_minor, flags=agreed, kernel_flags=offered,
                          max_write=MAX_WRITE, max_readahead=max_readahead)
        body = k.INIT_OUT.pack(
            k.KERNEL_VERSION, out_minor, max_readahead, agreed & 0xFFFFFFFF,
            self.max_background, self.max_background * 3 // 4, MAX_WRITE, 1,
            MAX_WRITE // PAGE, 0, agreed >> 32, 0)
        self.conn = conn
        if self.on_init is not None:
            self.on_init(conn)   # written down before the kernel can send anything else
        log.info("FUSE connection: protocol 7.%d, max_write=%d, max_readahead=%d, "
                 "flags=%#x of %#x offered", out_minor, MAX_WRITE, max_readahead, agreed,
                 offered)
        self.reply(req.unique, body)
        self._init_done.set()

    # -- replies -----------------------------------------------------------------------------
    def reply(self, unique: int, *bufs: Any) -> None:
        size = k.OUT_HEADER.size + sum(len(b) for b in bufs)
        self._send([k.OUT_HEADER.pack(size, 0, unique), *bufs])

    def reply_error(self, unique: int, code: int) -> None:
        self._send([k.OUT_HEADER.pack(k.OUT_HEADER.size, -code, unique)])

    def notify(self, code: int, body: bytes) -> None:
        self._send([k.OUT_HEADER.pack(k.OUT_HEADER.size + len(body), code, 0), body])

    def _send(self, bufs: list[Any]) -> None:
        try:
            os.writev(self.fd, bufs)
        except OSError as exc:
            # ENOENT: the request was interrupted and is gone; ENODEV: unmounted
            if exc.errno not in (errno.ENOENT, errno.ENODEV):
                log.warning("writing a FUSE reply failed: %s", exc)
