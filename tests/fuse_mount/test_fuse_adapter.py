"""The mfusepy adapter's own plumbing: thread states of libfuse's worker threads,
and the libfuse options it asks for."""

from __future__ import annotations

import ctypes

import pytest

from fuse_mount import adapter, reply_buffers
from fuse_mount.options import MountOptions

_START = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


def _thread_states() -> int:
    """How many Python thread states the interpreter holds."""
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    n, ts = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while ts:
        n, ts = n + 1, api.PyThreadState_Next(ts)
    return n


def _callback_on_a_c_thread(pin: bool) -> int:
    """Call into Python once from a thread that C started (as libfuse starts
    its workers); returns how many thread states that left behind."""
    libc = ctypes.CDLL(None)

    def start(_arg: object) -> None:
        if pin:
            adapter._keep_thread_state()
        return None

    start_cb = _START(start)
    before = _thread_states()
    thread = ctypes.c_ulong()
    assert libc.pthread_create(ctypes.byref(thread), None, start_cb, None) == 0
    assert libc.pthread_join(thread, None) == 0
    return _thread_states() - before


def test_without_pinning_a_callback_thread_state_dies_with_the_call():
    # the premise: what happens to every call on libfuse's workers unless we step in
    assert _callback_on_a_c_thread(pin=False) == 0


def test_pinned_thread_state_outlives_the_callback():
    assert _callback_on_a_c_thread(pin=True) == 1


@pytest.mark.parametrize("threads", [1, 16, 64])
def test_fuse_workers_never_retire(threads: int):
    kw = adapter.fuse_mount_options(MountOptions(fuse_threads=threads), "hdfs://nn/x", True)
    assert kw["max_threads"] == threads
    assert kw["max_idle_threads"] == threads


# -- read replies as libfuse buffers ----------------------------------------------------------
def test_splice_max_read_fits_libfuses_pipe():
    import fcntl
    import os

    n = reply_buffers.splice_max_read()
    assert n % 4096 == 0 and 4096 <= n <= reply_buffers.MAX_REQUEST
    r, w = os.pipe()
    try:  # libfuse sizes its pipe to the reply + 3 pages + the reply header
        assert fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, n + 3 * 4096 + 16) >= n
    finally:
        os.close(r)
        os.close(w)


def test_request_size_is_capped_only_when_cache_hits_are_spliced(tmp_path):
    def max_read(**kw: object) -> object:
        return adapter.fuse_mount_options(MountOptions(**kw), "hdfs://nn/x", True).get("max_read")

    assert max_read() is None  # no disk cache: nothing to splice from
    assert max_read(cache_dir=str(tmp_path), splice=False) is None
    assert max_read(cache_dir=str(tmp_path)) == reply_buffers.splice_max_read()


class _Core:
    """Stands in for HdfsFilesystem: serves ``data``, from "the cache" or not."""

    def __init__(self, data: bytes):
        from fuse_mount.metrics import MountMetrics

        self.data = data
        self.metrics = MountMetrics()
        self.cached = True        # answer read_cached (a checked cache hit)

    def read_cached(self, fh: int, size: int, offset: int,
                    out: memoryview | None = None) -> memoryview | None:
        if not self.cached or offset >= len(self.data):
            return None
        part = self.data[offset:offset + size]
        assert out is not None
        out[:len(part)] = part
        return out[:len(part)]

    def read(self, fh: int, size: int, offset: int) -> bytes:
        return self.data[offset:offset + size]

    def read_into(self, fh: int, out: memoryview, offset: int) -> int:
        part = self.data[offset:offset + len(out)]
        out[:len(part)] = part
        return len(part)


def _reply(fuse: adapter.FuseAdapter, size: int, offset: int) -> tuple[bytes, int]:
    """Call read_buf as libfuse does; returns (bytes, pipe fd or -1) and frees the vector."""
    import os

    slot = ctypes.c_void_p()
    assert fuse.read_buf(None, ctypes.pointer(slot), size, offset, 1) == 0
    vec = reply_buffers.FuseBufvec.from_address(slot.value)
    buf = vec.buf[0]
    assert vec.count == 1
    if buf.flags & reply_buffers.FUSE_BUF_IS_FD:
        out, fd = os.read(buf.fd, buf.size), buf.fd
    else:
        out, fd = ctypes.string_at(buf.mem, buf.size), -1
        reply_buffers.libc.free(buf.mem)
    reply_buffers.libc.free(slot.value)
    return out, fd


def test_read_buf_splices_what_it_can_and_copies_the_rest(tmp_path):
    data = bytes(range(256)) * 256
    core = _Core(data)
    fuse = adapter.FuseAdapter(core, MountOptions(cache_dir=str(tmp_path)))  # type: ignore[arg-type]
    out, fd = _reply(fuse, 50000, 100)  # a checked cache hit, from the thread's buffer
    assert out == data[100:50100] and fd >= 0
    assert core.metrics.value("hdfs_fuse_cache_spliced_bytes_total") == 50000
    out, fd = _reply(fuse, 40000, 20000)  # the same buffer again: the last reply was sent
    assert out == data[20000:60000] and fd >= 0
    core.cached = False  # not in the disk cache: its pages go into the pipe by reference
    out, fd = _reply(fuse, 40000, 300)
    assert out == data[300:40300] and fd >= 0
    assert core.metrics.value("hdfs_fuse_cache_spliced_bytes_total") == 90000
    out, fd = _reply(fuse, 5000, 200)  # under two pages: copied
    assert out == data[200:5200] and fd == -1
    assert _reply(fuse, 5000, len(data) + 10) == (b"", -1)  # past the end
    fuse.destroy("/")


def test_read_buf_without_splice_copies_every_reply():
    data = bytes(range(256)) * 256
    fuse = adapter.FuseAdapter(_Core(data), MountOptions())  # type: ignore[arg-type]
    assert _reply(fuse, 40000, 300) == (data[300:40300], -1)
    assert _reply(fuse, 5000, len(data) - 100) == (data[-100:], -1)
    assert _reply(fuse, 0, 0) == (b"", -1)


def test_bytes_left_in_the_pipe_never_start_the_next_reply(tmp_path, monkeypatch):
    import os

    data = bytes(range(256)) * 256
    core = _Core(data)
    fuse = adapter.FuseAdapter(core, MountOptions(cache_dir=str(tmp_path)))  # type: ignore[arg-type]
    slot = ctypes.c_void_p()
    # a reply libfuse never sent (say, the request was interrupted): bytes stay behind
    assert fuse.read_buf(None, ctypes.pointer(slot), 30000, 0, 1) == 0
    reply_buffers.libc.free(slot.value)
    out, fd = _reply(fuse, 10000, 5000)
    assert out == data[5000:15000] and fd >= 0
    # a vmsplice that failed half-way leaves part of a reply: it is discarded too
    real = adapter.vmsplice_all

    def half(fd: int, buf: object) -> bool:
        os.write(fd, bytes(memoryview(buf)[:700]))  # type: ignore[arg-type]
        return False

    monkeypatch.setattr(adapter, "vmsplice_all", half)
    out, fd = _reply(fuse, 10000, 7000)
    assert out == data[7000:17000] and fd == -1
    monkeypatch.setattr(adapter, "vmsplice_all", real)
    out, fd = _reply(fuse, 10000, 9000)
    assert out == data[9000:19000] and fd >= 0
    assert fuse._local.pipe.pending() == 0
    fuse.destroy("/")
    assert fuse._pipes == []
    with pytest.raises(OSError):
        os.fstat(fd)
