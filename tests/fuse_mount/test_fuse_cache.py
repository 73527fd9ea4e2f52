"""Disk cache: exact bytes, LRU bound, restart, identity, full disk -> read-through."""

from __future__ import annotations

import os

import pytest
from fuse_kit import small_tmpfs

from fuse_mount.cache import CacheBusy, DiskCache, cache_key
from fuse_mount.cache_files import data_ranges
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
    (path,) = [os.path.join(r, f) for r, _, fs in os.walk(tmp_path / "data") for f in fs]
    assert os.stat(path).st_blocks * 512 <= 4 * CS  # the evicted chunk's space is given back
    assert list(data_ranges_of(path)) == [(0, CS), (2 * CS, 5 * CS)]  # a hole where it was


def data_ranges_of(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        yield from data_ranges(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def test_file_unlinked_when_its_last_chunk_goes(tmp_path):
    c = DiskCache(str(tmp_path), 2 * CS, chunk_size=CS)
    c.put("a", 0, blob(CS))
    c.put("a", 1, blob(CS, 1))
    c.put("b", 0, blob(CS, 2))  # evicts a.0
    c.put("b", 1, blob(CS, 3))  # evicts a.1: nothing of "a" left
    files = sorted(f for _, _, fs in os.walk(tmp_path / "data") for f in fs)
    assert files == ["b"]
    assert c.read_range("b", 2 * CS, 0, 2 * CS) == blob(CS, 2) + blob(CS, 3)


def test_read_that_raced_an_eviction_is_a_miss_not_zeros(tmp_path, monkeypatch):
    """The chunk is evicted (its range punched) while the read is in its preadv."""
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    c.put("k", 0, blob(CS))
    c.put("k", 1, blob(CS, 1))
    real_preadv = os.preadv

    def preadv_then_evict(fd, bufs, offset):
        n = real_preadv(fd, bufs, offset)
        c._drop_chunks([("k", 0)])  # what a concurrent eviction does
        return n

    monkeypatch.setattr(os, "preadv", preadv_then_evict)
    assert c.read_range("k", 2 * CS, 0, CS) is None
    monkeypatch.setattr(os, "preadv", real_preadv)
    assert c.read_range("k", 2 * CS, CS, CS) == blob(CS, 1)


def test_restart_finds_exactly_the_written_chunks(tmp_path):
    """SEEK_DATA/SEEK_HOLE rebuild: chunks 0, 2 and the short last one; 1 and 3 missing."""
    length = 4 * CS + 100
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    for idx in (4, 0, 2):  # out of order, as parallel read-ahead delivers them
        c.put("k", idx, blob(c.chunk_span(length, idx), idx))
    c.close()
    c2 = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    assert [c2.has_range("k", i * CS, 1) for i in range(5)] == [True, False, True, False, True]
    assert c2.used_bytes == 2 * CS + 100
    assert c2.read_range("k", length, 4 * CS, 100) == blob(100, 4)
    assert c2.read_range("k", length, 2 * CS, CS) == blob(CS, 2)


def test_older_layout_and_stray_files_are_cleared_at_start(tmp_path):
    stray = tmp_path / "data" / "ab"
    stray.mkdir(parents=True)
    for name in ("ab" + "0" * 38 + ".3", "ab" + "0" * 38 + ".tmp7", "notakey"):
        (stray / name).write_bytes(b"x" * 10)
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    assert len(c) == 0 and os.listdir(stray) == []


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
    path = c._file("k")
    with open(path, "r+b") as fh:
        fh.truncate(CS + CS // 2)  # chunk 1 cut in half
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
    # and no space is held by chunks that failed: what is on the disk is what is indexed
    used = sum(os.stat(os.path.join(r, f)).st_blocks * 512
               for r, _, fs in os.walk(tiny_tmpfs / "data") for f in fs)
    assert used <= c.used_bytes + 4096


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


def test_handle_file_follows_a_recreated_cache_file(tmp_path):
    """A handle's kept descriptor must not read the deleted file's holes after
    every chunk was evicted and the file written again."""
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    c.put("k", 0, blob(CS, 1))
    f = c.file("k")
    out = bytearray(CS)
    assert c.read_into("k", CS, 0, memoryview(out), f) == CS and out == blob(CS, 1)
    c._drop_chunks([("k", 0)])  # the last chunk goes: the file is deleted
    assert c.read_into("k", CS, 0, memoryview(out), f) is None
    c.put("k", 0, blob(CS, 2))  # a new file under the same name
    assert c.read_into("k", CS, 0, memoryview(out), f) == CS and out == blob(CS, 2)
    f.close()


@pytest.mark.parametrize("how", ["read", "into"])
def test_concurrent_reads_writes_and_evictions_never_return_wrong_bytes(tmp_path, how):
    """Readers, the background writer and constant eviction (a bound of 6 chunks
    for 4 files x 8 chunks) at once: a read is either a miss or exact, whether
    read into a new buffer or through a handle's kept descriptor (which an
    eviction's hole punch or a deleted file must not fool)."""
    import random
    import threading
    import time

    c = DiskCache(str(tmp_path), 6 * CS, chunk_size=CS, write_queue_bytes=8 * CS)
    files = {f"f{i}": blob(8 * CS - 123 * i, i) for i in range(4)}  # last chunks short
    stop = time.monotonic() + 2.0
    wrong: list[tuple[str, int, int]] = []
    served = [0]

    def writer() -> None:
        rnd = random.Random(1)
        while time.monotonic() < stop:
            key = rnd.choice(list(files))
            data = files[key]
            first = rnd.randrange(8) * CS
            c.put_aligned_async(key, len(data), first, data[first:first + 3 * CS])

    def reader(seed: int) -> None:
        rnd = random.Random(seed)
        handles = {key: c.file(key) for key in files}
        while time.monotonic() < stop:
            key = rnd.choice(list(files))
            data = files[key]
            off = rnd.randrange(len(data))
            n = rnd.randrange(1, 2 * CS)
            if how == "read":
                got = c.read_range(key, len(data), off, n)
            else:
                buf = bytearray(n)
                got_n = c.read_into(key, len(data), off, memoryview(buf), handles[key])
                got = None if got_n is None else buf[:got_n]
            if got is None:
                continue
            served[0] += 1
            if bytes(got) != data[off:off + n]:
                wrong.append((key, off, n))
        for f in handles.values():
            f.close()

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.flush(5)
    assert wrong == []
    assert served[0] > 100, served  # the cache did serve, so the check meant something
    assert c.used_bytes <= 6 * CS
    c.close()


# -- checksums ------------------------------------------------------------------------------
def _flip(path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0x01]))


def test_a_flipped_bit_is_a_counted_miss_and_the_chunk_goes(tmp_path):
    m = MountMetrics()
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS, metrics=m)
    data = blob(3 * CS)
    c.put_aligned("k", len(data), 0, data)
    _flip(c._file("k"), CS + 17)
    assert c.read_range("k", len(data), CS, 10) is None  # the flip is outside these 10 bytes
    assert m.value("hdfs_fuse_cache_corrupt_chunks_total") == 1
    assert not c.has_range("k", CS, 1)
    assert c.read_range("k", len(data), 0, CS) == data[:CS]
    assert c.read_range("k", len(data), 2 * CS, CS) == data[2 * CS:]
    c.put("k", 1, data[CS:2 * CS])  # fetched again: cached again, and exact
    assert c.read_range("k", len(data), 0, len(data)) == data


def test_blocks_a_read_only_touches_are_checked_whole(tmp_path):
    """256 KiB chunks of four 64 KiB blocks: a read inside one block checks all of
    that block, also the bytes it does not return, and nothing of the others."""
    cs = 256 * 1024
    m = MountMetrics()
    c = DiskCache(str(tmp_path), 16 << 20, chunk_size=cs, metrics=m)
    data = blob(3 * cs + 1000, 3)
    assert c.block == 64 * 1024
    c.put_aligned("k", len(data), 0, data)
    for off, n in [(0, 1), (100, 64 * 1024), (cs - 10, 20), (3 * cs, 1000), (5, 3 * cs)]:
        assert c.read_range("k", len(data), off, n) == data[off:off + n]
    _flip(c._file("k"), cs + 64 * 1024 + 5)  # block 1 of chunk 1
    assert c.read_range("k", len(data), cs, 1000) == data[cs:cs + 1000]  # block 0: fine
    assert c.read_range("k", len(data), cs + 2 * 64 * 1024 - 1, 1) is None  # block 1's end
    assert m.value("hdfs_fuse_cache_corrupt_chunks_total") == 1
    f = c.file("k")
    out = bytearray(2 * cs)
    assert c.read_into("k", len(data), 0, memoryview(out), f) is None  # chunk 1 is gone
    assert c.read_into("k", len(data), 2 * cs, memoryview(out), f) == cs + 1000
    assert out[:cs + 1000] == data[2 * cs:]
    f.close()


def test_restart_keeps_only_chunks_with_an_intact_record(tmp_path):
    c = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    data = blob(4 * CS, 7)
    c.put_aligned("kk", len(data), 0, data)  # records 0-3 of log "kk"
    c.put_aligned("ot", len(data), 0, data)  # another log
    rec = c.checksums.record_size
    log_kk, log_ot = c.checksums.path("kk"), c.checksums.path("ot")
    c.close()
    _flip(log_kk, rec + 50)  # chunk 1's record: damaged
    with open(log_kk, "r+b") as fh:
        fh.truncate(3 * rec + rec // 2)  # chunk 3's record: torn
    os.unlink(log_ot)  # no checksums at all, as a cache from before them
    c2 = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    assert [c2.has_range("kk", i * CS, 1) for i in range(4)] == [True, False, True, False]
    assert c2.used_bytes == 2 * CS
    assert list(data_ranges_of(c2._file("kk"))) == [(0, CS), (2 * CS, 3 * CS)]  # rest punched
    assert not os.path.exists(c2._file("ot"))
    assert os.path.getsize(log_kk) == 2 * rec  # rewritten: the kept chunks' records only
    assert c2.read_range("kk", len(data), 2 * CS, CS) == data[2 * CS:3 * CS]
    c2.put("kk", 1, data[CS:2 * CS])  # appended after the rewrite, and found again
    c2.close()
    c3 = DiskCache(str(tmp_path), 1 << 20, chunk_size=CS)
    assert c3.read_range("kk", len(data), 0, 3 * CS) == data[:3 * CS]


def test_checksum_log_is_rewritten_when_evictions_leave_it_mostly_stale(tmp_path, monkeypatch):
    import fuse_mount.checksums as checksums

    monkeypatch.setattr(checksums, "_COMPACT_SLACK", 8)
    c = DiskCache(str(tmp_path), 4 * CS, chunk_size=CS)
    for i in range(40):  # 40 records appended, 4 chunks live at any time
        c.put("kk", i, blob(CS, i))
    assert os.path.getsize(c.checksums.path("kk")) <= (2 * 4 + 8 + 1) * c.checksums.record_size
    c.close()
    c2 = DiskCache(str(tmp_path), 4 * CS, chunk_size=CS)
    assert [c2.has_range("kk", i * CS, 1) for i in range(36, 40)] == [True] * 4
    assert c2.read_range("kk", 40 * CS, 39 * CS, CS) == blob(CS, 39)


def test_identity_is_the_file_id_when_known():
    a = cache_key("hdfs://nn:1", "/f", 10, 1000, file_id=16390)
    assert a == cache_key("hdfs://nn:1", "/renamed", 10, 1000, file_id=16390)  # renames keep it
    assert a != cache_key("hdfs://nn:1", "/f", 10, 1000, file_id=16391)  # a rewrite does not
    assert a != cache_key("hdfs://nn:1", "/f", 11, 1000, file_id=16390)  # nor an append
    assert a != cache_key("hdfs://nn:1", "/f", 10, 1000)  # unknown id: path-based
