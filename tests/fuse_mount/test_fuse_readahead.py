"""Read-ahead logic against an in-memory fetch function.

The prefetcher only sees ``fetch(offset, length) -> bytes``; these tests drive
it with a recording fetch over a bytes object, so every property (exact
bytes, window growth, reset on seek, memory bound, bounded waits) is checked
without HDFS.  The same code runs over minidfs in the mount tests.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from fuse_mount.iopool import IoPool
from fuse_mount.metrics import MountMetrics
from fuse_mount.readahead import MemoryBudget, Prefetcher, ReadaheadConfig
from hdfs_client.errors import HdfsIOError, HdfsTimeout

KiB, MiB = 1024, 1 << 20
DATA = random.Random(7).randbytes(24 * MiB)


class Fetch:
    def __init__(self, data=DATA, delay=0.0):
        self.data = data
        self.delay = delay
        self.calls: list[tuple[int, int]] = []
        self.active = 0
        self.max_active = 0
        self.fail_next = 0
        self.block = threading.Event()
        self.block.set()
        self.lock = threading.Lock()

    def __call__(self, offset, length):
        with self.lock:
            self.calls.append((offset, length))
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            fail = self.fail_next > 0
            self.fail_next -= fail
        try:
            self.block.wait()
            if self.delay:
                time.sleep(self.delay)
            if fail:
                raise HdfsIOError("injected")
            return self.data[offset:offset + length]
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture(scope="module")
def pool():
    p = IoPool(16, stuck_after=5)
    yield p
    p.close()


def make(pool, fetch, *, budget=256 * MiB, timeout=5.0, **cfg):
    m = MountMetrics()
    b = MemoryBudget(budget)
    pf = Prefetcher(len(fetch.data), fetch, pool=pool, budget=b,
                    config=ReadaheadConfig(**cfg), timeout=timeout, metrics=m)
    return pf, b, m


def test_sequential_read_is_exact_and_window_grows(pool):
    f = Fetch()
    pf, budget, m = make(pool, f, max_window=8 * MiB)
    out = bytearray()
    for off in range(0, len(DATA), 128 * KiB):
        out += pf.read(off, 128 * KiB)
    assert bytes(out) == DATA
    assert pf.window == 8 * MiB
    # large parts once the window grew: far fewer fetches than requests
    assert len(f.calls) < len(DATA) // (128 * KiB) // 2
    assert max(n for _, n in f.calls) == 1 * MiB  # 8 MiB window / 8 streams
    pf.close()
    time.sleep(0.05)
    assert budget.used == 0


def test_parallel_parts_in_flight(pool):
    f = Fetch(delay=0.02)
    pf, _, _ = make(pool, f, max_window=8 * MiB, streams=8)
    for off in range(0, 8 * MiB, 1 * MiB):
        pf.read(off, 1 * MiB)
    assert f.max_active >= 4
    pf.close()


def test_first_read_not_at_zero_does_not_prefetch(pool):
    f = Fetch()
    pf, _, _ = make(pool, f)
    tail = len(DATA) - 64 * KiB
    assert pf.read(tail, 64 * KiB) == DATA[tail:]
    assert f.calls == [(tail, 64 * KiB)]


def test_seek_resets_window(pool):
    f = Fetch()
    pf, _, m = make(pool, f, max_window=8 * MiB)
    for off in range(0, 4 * MiB, 1 * MiB):
        pf.read(off, 1 * MiB)
    assert pf.window > 128 * KiB
    far = 23 * MiB  # beyond the 16 MiB reorder tolerance
    assert pf.read(far, 4096) == DATA[far:far + 4096]
    assert pf.window == 128 * KiB
    assert m.value("hdfs_fuse_readahead_wasted_bytes_total") > 0
    pf.close()


def test_small_file_is_one_fetch(pool):
    data = DATA[:110 * KiB]
    f = Fetch(data)
    pf, _, _ = make(pool, f)
    assert pf.read(0, 128 * KiB) == data
    assert f.calls == [(0, len(data))]


def test_memory_budget_is_never_exceeded(pool):
    f = Fetch(delay=0.005)
    budget_limit = 2 * MiB
    pf, budget, _ = make(pool, f, budget=budget_limit, max_window=16 * MiB)
    peak = 0
    stop = threading.Event()

    def watch():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, budget.used)
            time.sleep(0.0005)

    t = threading.Thread(target=watch)
    t.start()
    out = bytearray()
    for off in range(0, 12 * MiB, 256 * KiB):
        out += pf.read(off, 256 * KiB)
    stop.set()
    t.join()
    assert bytes(out) == DATA[:12 * MiB]
    assert 0 < peak <= budget_limit
    pf.close()


def test_aligned_parts(pool):
    f = Fetch()
    pf, _, _ = make(pool, f, align=1 * MiB, min_part=1 * MiB, max_part=8 * MiB, max_window=32 * MiB)
    for off in range(0, 16 * MiB, 300 * KiB):
        assert pf.read(off, 300 * KiB) == DATA[off:off + 300 * KiB]
    pf.close()
    starts = [o for o, n in f.calls]
    # read-ahead parts are chunk aligned (synchronous gap reads may not be)
    assert sum(1 for o in starts if o % MiB == 0) >= len(starts) - 2


def test_failed_part_is_retried_synchronously(pool):
    f = Fetch()
    pf, _, _ = make(pool, f)
    f.fail_next = 1
    assert pf.read(0, 64 * KiB) == DATA[:64 * KiB]


def test_hung_fetch_times_out_in_bounded_time(pool):
    f = Fetch()
    pf, _, m = make(pool, f, timeout=0.3)
    f.block.clear()
    t0 = time.monotonic()
    with pytest.raises(HdfsTimeout):
        pf.read(0, 64 * KiB)
    assert time.monotonic() - t0 < 1.5
    f.block.set()
    # the same handle works again once the backend does
    assert pf.read(0, 64 * KiB) == DATA[:64 * KiB]
    pf.close()


def test_out_of_order_requests_stay_sequential(pool):
    """The kernel sends read-ahead from several threads; small reordering is not a seek."""
    f = Fetch()
    pf, _, _ = make(pool, f, max_window=8 * MiB)
    order = []
    for base in range(0, 16 * MiB, 4 * MiB):
        offs = [base + i * MiB for i in range(4)]
        offs[1], offs[2] = offs[2], offs[1]
        order += offs
    for off in order:
        assert pf.read(off, MiB) == DATA[off:off + MiB]
    assert pf.stats["resets"] == 0
    pf.close()


@settings(max_examples=60, deadline=None)
@given(hst.lists(hst.tuples(hst.integers(0, len(DATA) - 1), hst.integers(1, 2 * MiB)),
                 min_size=1, max_size=25),
       hst.booleans())
def test_any_read_sequence_returns_exact_bytes(reads, aligned):
    pool = _shared_pool()
    f = Fetch()
    cfg = dict(align=MiB, min_part=MiB) if aligned else {}
    pf, budget, _ = make(pool, f, max_window=4 * MiB, **cfg)
    for off, n in reads:
        assert pf.read(off, n) == DATA[off:off + n]
    pf.close()


_POOL: list[IoPool] = []


def _shared_pool() -> IoPool:
    if not _POOL:
        _POOL.append(IoPool(16, stuck_after=5))
    return _POOL[0]
