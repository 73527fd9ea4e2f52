"""Disk cache: exact bytes, LRU bound, restart, identity, full disk -> read-through."""

from __future__ import annotations

import os

import pytest
from fusetest_helpers import small_tmpfs

from fuse_mount.cache import CacheBusy, DiskCache, cache_key
from fuse_mount.metrics import MountMetrics

CS = 4096


def blob(n, seed=0):
    return bytes((i * 31 + seed) % 251 for i in range(n))


def test_aligned_put_and_ranged_reads(tmp_path):
    m = MountMetrics()
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS, metrics=m)
    data = blob(3 * CS + 100)
    assert c.put_aligned("k", len(data), 0, data) == 4  # last, short chunk ends at EOF
    for off, n in [(0, 10), (CS - 5, 10), (0, len(data)), (3 * CS + 50, 1000), (CS, CS)]:
        assert c.read_range("k", len(data), off, n) == data[off:off + n]
    assert m.value("hdfs_fuse_cache_hits_total") > 0
    assert m.value("hdfs_fuse_cache_read_bytes_total") > 0


def test_partial_chunks_are_not_stored(tmp_path):
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    data = blob(10 * CS)
    # bytes [100, 2*CS+100) contain exactly one whole chunk (index 1)
    assert c.put_aligned("k", len(data), 100, data[100:2 * CS + 100]) == 1
    assert c.has_range("k", CS, CS)
    assert not c.has_range("k", 0, 1)
    assert c.read_range("k", len(data), 0, CS) is None


def test_lru_eviction_keeps_bound_and_recent(tmp_path):
    m = MountMetrics()
    c = DiskCache(str(tmp_path), 4 * CS, chunk_size=CS, metrics=m)
    for i in range(4):
        c.put("k", i, blob(CS, i))
    c.read_range("k", 100 * CS, 0, 1)          # touch chunk 0: now most recent
    c.put("k", 4, blob(CS, 4))                 # evicts chunk 1, the least recent
    assert c.used_bytes <= 4 * CS
    assert c.has_range("k", 0, 1) and not c.has_range("k", CS, 1)
    assert m.value("hdfs_fuse_cache_evictions_total") == 1
    files = [f for _, _, fs in os.walk(tmp_path / "data") for f in fs]
    assert len(files) == 4  # evicted chunk files are gone from disk too


def test_index_survives_restart_and_lock_is_exclusive(tmp_path):
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    data = blob(2 * CS)
    c.put_aligned("k", len(data), 0, data)
    with pytest.raises(CacheBusy):
        DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    c.close()
    c2 = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    assert c2.read_range("k", len(data), 0, len(data)) == data
    assert c2.used_bytes == 2 * CS


def test_restart_with_smaller_bound_trims(tmp_path):
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    for i in range(8):
        c.put("k", i, blob(CS, i))
    c.close()
    c2 = DiskCache(str(tmp_path), 3 * CS, chunk_size=CS)
    assert c2.used_bytes <= 3 * CS and len(c2) == 3


def test_short_chunk_is_a_miss_and_dropped(tmp_path):
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    data = blob(2 * CS)
    c.put_aligned("k", len(data), 0, data)
    path = c._path("k", 1)
    with open(path, "r+b") as fh:
        fh.truncate(CS // 2)
    assert c.read_range("k", len(data), CS, CS) is None
    assert not c.has_range("k", CS, 1)


def test_identity_changes_with_length_and_mtime():
    a = cache_key("hdfs://nn:1", "/f", 10, 1000)
    assert a == cache_key("hdfs://nn:1", "/f", 10, 1000)
    assert a != cache_key("hdfs://nn:1", "/f", 11, 1000)
    assert a != cache_key("hdfs://nn:1", "/f", 10, 1001)
    assert a != cache_key("hdfs://nn:2", "/f", 10, 1000)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    with small_tmpfs(tmp_path / "tiny", "256k") as d:
        yield d


def test_full_disk_falls_back_to_read_through(tiny_tmpfs):
    """A cache bound larger than the disk: ENOSPC must skip caching, never fail."""
    m = MountMetrics()
    c = DiskCache(str(tiny_tmpfs), 64 << 20, chunk_size=64 * 1024, metrics=m)
    stored = 0
    for i in range(16):  # 1 MiB into a 256 KiB filesystem
        stored += c.put("k", i, blob(64 * 1024, i))
    assert 0 < stored < 16
    assert m.value("hdfs_fuse_cache_write_errors_total") >= 1
    # no half-written chunk is visible, and what is indexed reads back exactly
    for i in range(16):
        if c.has_range("k", i * 64 * 1024, 1):
            assert c.read_range("k", 16 * 64 * 1024, i * 64 * 1024, 64 * 1024) == blob(64 * 1024, i)
    leftovers = [f for _, _, fs in os.walk(tiny_tmpfs / "data") for f in fs if ".tmp" in f]
    assert leftovers == []


def test_async_writes_land(tmp_path):
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS, write_queue_bytes=2 * CS)
    data = blob(8 * CS)
    assert c.put_aligned_async("k", len(data), 0, data) == 8  # waits for room, drops nothing
    assert c.flush(5)
    assert c.read_range("k", len(data), 0, len(data)) == data
    c.close()


def test_stuck_cache_disk_drops_chunks_after_bounded_wait(tmp_path, monkeypatch):
    import threading
    import time

    import fuse_mount.cache as cache_mod

    monkeypatch.setattr(cache_mod, "_QUEUE_WAIT_S", 0.1)
    m = MountMetrics()
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS, write_queue_bytes=2 * CS, metrics=m)
    release = threading.Event()
    real_put = c.put
    c.put = lambda *a: (release.wait(5), real_put(*a))[1]  # a disk that does not answer
    data = blob(8 * CS)
    t0 = time.monotonic()
    queued = c.put_aligned_async("k", len(data), 0, data)
    assert time.monotonic() - t0 < 1.0
    assert queued < 8 and m.value("hdfs_fuse_cache_write_errors_total") >= 1
    release.set()
    assert c.flush(5)
    c.close()
