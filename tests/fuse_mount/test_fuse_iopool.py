"""IoPool: bounded waits, and hung workers do not starve later calls."""

from __future__ import annotations

import threading
import time

import pytest

from fuse_mount.iopool import IoPool
from hdfs_client.errors import HdfsTimeout


def test_call_returns_result_and_propagates_errors():
    p = IoPool(2, stuck_after=1)
    assert p.call(lambda a, b: a + b, 2, 3, timeout=1) == 5
    with pytest.raises(ZeroDivisionError):
        p.call(lambda: 1 / 0, timeout=1)
    p.close()


def test_timeout_is_bounded_and_pool_recovers():
    hang = threading.Event()
    timeouts = []
    p = IoPool(2, stuck_after=0.2, on_timeout=lambda: timeouts.append(1))
    # pin both workers with calls that never finish (until released)
    for _ in range(2):
        t0 = time.monotonic()
        with pytest.raises(HdfsTimeout):
            p.call(hang.wait, timeout=0.2)
        assert time.monotonic() - t0 < 0.6
    time.sleep(0.25)  # both are now "stuck": they no longer count against max_workers
    assert p.call(lambda: "fresh worker", timeout=1) == "fresh worker"
    assert p.stats()["stuck"] == 2
    assert len(timeouts) == 2
    hang.set()
    p.close()


def test_parallelism():
    p = IoPool(8, stuck_after=5)
    barrier = threading.Barrier(8, timeout=2)
    futs = [p.submit(barrier.wait) for _ in range(8)]
    for f in futs:
        f.result(timeout=3)  # would time out (BrokenBarrierError) without 8 parallel workers
    p.close()
