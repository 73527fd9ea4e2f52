"""The mfusepy adapter's own plumbing: thread states of libfuse's worker threads,
and the libfuse options it asks for."""

from __future__ import annotations

import ctypes

import pytest

from fuse_mount import adapter
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
