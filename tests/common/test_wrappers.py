"""Fault-injecting and throttled wrappers behave as tests and benchmarks assume."""

from __future__ import annotations

import time

import pytest

from hdfs_client import errors
from hdfs_client.wrappers import FaultInjectingClient
from hdfs_csi_common.ratelimit import TokenBucket


def test_token_bucket_limits_rate() -> None:
    bucket = TokenBucket(rate=1_000_000, burst=100_000)
    t0 = time.monotonic()
    for _ in range(4):
        bucket.acquire(100_000)
    elapsed = time.monotonic() - t0
    # 400 kB at 1 MB/s with a 100 kB burst needs at least ~0.3 s
    assert elapsed >= 0.25


def test_token_bucket_starting_empty_caps_even_a_short_stream() -> None:
    # minidfs's per-stream cap: no initial credit, so 50 kB at 1 MB/s takes ~50 ms
    full = TokenBucket(rate=1_000_000, burst=50_000)
    empty = TokenBucket(rate=1_000_000, burst=50_000, start_full=False)
    t0 = time.monotonic()
    full.acquire(50_000)
    t_full = time.monotonic() - t0
    t0 = time.monotonic()
    empty.acquire(50_000)
    t_empty = time.monotonic() - t0
    assert t_empty >= 0.04
    assert t_full < t_empty


def test_token_bucket_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


def test_fault_injection_fails_exactly_n_calls(hdfs) -> None:  # type: ignore[no-untyped-def]
    hdfs.mkdirs("/wrappers")
    faulty = FaultInjectingClient(hdfs)
    faulty.fail_next("get_status", 2, errors.HdfsIOError("boom"))
    for _ in range(2):
        with pytest.raises(errors.HdfsIOError):
            faulty.get_status("/wrappers")
    assert faulty.get_status("/wrappers").is_dir
    assert faulty.calls["get_status"] == 3


def test_throttled_client_caps_each_reader_and_keeps_bytes(hdfs) -> None:  # type: ignore[no-untyped-def]
    from hdfs_client.wrappers import ThrottledClient

    data = bytes(range(256)) * 4096  # 1 MiB
    hdfs.write_file("/wrappers/throttled", data)
    slow = ThrottledClient(hdfs, bytes_per_second_per_stream=2 * 1024 * 1024)
    with slow.open_reader("/wrappers/throttled") as reader:
        t0 = time.monotonic()
        step = 128 * 1024
        got = b"".join(reader.read_range(off, step) for off in range(0, len(data), step))
        elapsed = time.monotonic() - t0
    assert got == data
    # 1 MiB at 2 MiB/s after the bucket's initial burst (rate / 10) needs at least ~0.45 s
    assert elapsed >= 0.4
