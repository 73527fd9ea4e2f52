"""How a read reply reaches the kernel: buffers libfuse sends itself, and pipes
filled by ``vmsplice``.

libfuse's ``read_buf`` callback returns a ``struct fuse_bufvec`` instead of
filling one: memory from ``malloc`` (libfuse ``free()``s it after replying),
or a pipe libfuse splices into ``/dev/fuse``.  This module holds the ctypes
layouts and calls that needs (``fuse_buf``, ``fuse_bufvec``, ``Py_buffer``,
``iovec``, ``vmsplice(2)``), the per-thread reply pipe, and the request-size
limit a splice imposes.  It is the transport: the filesystem core and the
disk cache hand :mod:`fuse_mount.adapter` bytes (views of checked buffers),
never a descriptor of the transport, and only the adapter uses this module.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import struct
import termios
from typing import Any

from fuse_mount.options import MountOptions

# -- replies as libfuse buffers (read_buf) ----------------------------------------------
FUSE_CAP_SPLICE_WRITE = 1 << 7
FUSE_BUF_IS_FD = 1 << 1


class FuseBuf(ctypes.Structure):
    """``struct fuse_buf`` (fuse_common.h).  mfusepy declares ``fuse_bufvec.buf``
    as a pointer; in C it is an array inside the struct, so we lay it out here."""
    _fields_ = [("size", ctypes.c_size_t), ("flags", ctypes.c_int), ("mem", ctypes.c_void_p),
                ("fd", ctypes.c_int), ("pos", ctypes.c_int64)]


class FuseBufvec(ctypes.Structure):
    _fields_ = [("count", ctypes.c_size_t), ("idx", ctypes.c_size_t), ("off", ctypes.c_size_t),
                ("buf", FuseBuf * 1)]


libc = ctypes.CDLL(None, use_errno=True)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.calloc.restype = ctypes.c_void_p
libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
# room for fields later libfuse versions append to struct fuse_buf (3.17: mem_size)
BUFVEC_BYTES = ctypes.sizeof(FuseBufvec) + 64


def malloc_view(size: int) -> tuple[int, memoryview]:
    """``size`` bytes from ``malloc`` (for libfuse to ``free``) and a view to fill them."""
    mem = libc.malloc(max(size, 1))
    if not mem:
        raise MemoryError("malloc failed")
    return mem, memoryview((ctypes.c_ubyte * size).from_address(mem)).cast("B")


def set_reply_buffer(bufpp: Any, *, size: int, mem: int | None = None, fd: int = -1) -> None:
    """Hand libfuse one buffer (memory from ``malloc``, or a pipe to read) as the
    reply; libfuse ``free()``s the vector and any memory after replying."""
    addr = libc.calloc(1, BUFVEC_BYTES)
    if not addr:
        if mem:
            libc.free(mem)
        raise MemoryError("calloc failed")
    vec = FuseBufvec.from_address(addr)
    vec.count = 1
    buf = vec.buf[0]
    buf.size = size
    if mem is None:
        buf.flags, buf.fd = FUSE_BUF_IS_FD, fd
    else:
        buf.mem = mem
    ctypes.cast(bufpp, ctypes.POINTER(ctypes.c_void_p))[0] = addr


MAX_REQUEST = 1 << 20  # the kernel's largest FUSE read request (256 pages)
PAGE = 4096
# Below two pages libfuse writes a reply instead of splicing it: copy those.
SPLICE_MIN = 2 * PAGE


def splices(options: MountOptions) -> bool:
    """Whether reads are answered by splice: only the disk cache has a file to
    splice from, so without one the request size stays the kernel's largest."""
    return options.splice and options.cache_dir is not None


@functools.lru_cache(maxsize=1)
def splice_max_read() -> int:
    """The largest read request whose reply libfuse can still splice.

    libfuse splices a reply through a pipe it sizes to the reply plus three
    pages and the header; a pipe beyond ``/proc/sys/fs/pipe-max-size`` (1 MiB
    by default) needs ``CAP_SYS_RESOURCE``.  Without it, a 1 MiB reply falls
    back to being read into a buffer and written, and the splice gains
    nothing; so requests are capped at what fits (252 pages with the
    defaults).  Measured on the development VM: 1 GiB re-read from the disk
    cache in RAM at 2.7 GB/s with 1008 KiB requests spliced, 2.1 GB/s with
    1 MiB requests falling back.
    """
    need = MAX_REQUEST + 3 * PAGE + 16
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, need)
            return MAX_REQUEST
        except OSError:
            pass
        try:
            with open("/proc/sys/fs/pipe-max-size") as fh:
                cap = int(fh.read())
        except (OSError, ValueError):
            cap = MAX_REQUEST
    finally:
        os.close(r)
        os.close(w)
    return max(PAGE, min(MAX_REQUEST, (cap - 3 * PAGE - 16) // PAGE * PAGE))


class PyBuffer(ctypes.Structure):
    """CPython's ``Py_buffer``: the address of a read-only buffer (``bytes`` and
    views of it), which ``ctypes.from_buffer`` refuses."""
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.py_object), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int),
                ("ndim", ctypes.c_int), ("format", ctypes.c_char_p),
                ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
                ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p)]


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_api = ctypes.pythonapi
_api.PyObject_GetBuffer.argtypes = [ctypes.py_object, ctypes.POINTER(PyBuffer), ctypes.c_int]
_api.PyBuffer_Release.argtypes = [ctypes.POINTER(PyBuffer)]
libc.vmsplice.restype = ctypes.c_ssize_t
libc.vmsplice.argtypes = [ctypes.c_int, ctypes.POINTER(Iovec), ctypes.c_ulong, ctypes.c_uint]
_SPLICE_F_NONBLOCK = 2


def vmsplice_all(fd: int, data: bytes | bytearray | memoryview) -> bool:
    """Put the pages of ``data`` into the pipe ``fd`` by reference (no copy).

    The pipe then reads whatever those pages hold when it is drained, so
    ``data`` must stay alive and unchanged until then: the caller keeps it.
    False when the pipe had no room for all of it (it then holds a part).
    """
    view = PyBuffer()
    if _api.PyObject_GetBuffer(data, ctypes.byref(view), 0) != 0:  # PyBUF_SIMPLE
        return False
    try:
        done, total = 0, view.len
        while done < total:
            iov = Iovec(view.buf + done, total - done)
            n = libc.vmsplice(fd, ctypes.byref(iov), 1, _SPLICE_F_NONBLOCK)
            if n <= 0:
                return False
            done += n
        return True
    finally:
        _api.PyBuffer_Release(ctypes.byref(view))


class ReplyPipe:
    """A worker thread's pipe for replies spliced from the disk cache.

    Each libfuse worker replies to one request at a time and drains the pipe
    while replying, so one pipe per thread is never shared.  A reply that
    failed half-way (the request was interrupted) can leave bytes behind:
    :meth:`fuse_mount.adapter.FuseAdapter._reply_pipe` then replaces the pipe rather than ever
    sending them as the start of the next reply.
    """

    def __init__(self, capacity: int):
        self.r, self.w = os.pipe2(os.O_CLOEXEC)
        try:
            self.capacity = fcntl.fcntl(self.w, fcntl.F_SETPIPE_SZ, capacity)
        except OSError:
            self.capacity = fcntl.fcntl(self.w, fcntl.F_GETPIPE_SZ)

    def pending(self) -> int:
        buf = bytearray(4)
        fcntl.ioctl(self.r, termios.FIONREAD, buf)
        return int(struct.unpack("i", buf)[0])

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)
