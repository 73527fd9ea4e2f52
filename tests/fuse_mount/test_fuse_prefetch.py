"""The small-file prefetch (``--prefetch-max-size``): once a second file of a
directory is opened, its other small files are read whole into the disk cache
ahead of their opens; never a wrong byte, bounded by the lead and the cache,
and nothing at all for files above the threshold (sequential shards)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator

import pytest
from fuse_kit import hdfs_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from benchmarks.pagecache import evict_file
from fuse_mount.fs import HdfsFilesystem
from fuse_mount.options import MountOptions

pytestmark = pytest.mark.timeout(180)

MiB = 1 << 20


def _tree(hdfs, name: str, *, dirs: int = 3, per_dir: int = 12, lo: int = 20_000,
          hi: int = 200_000, seed: int = 5) -> tuple[str, dict[str, bytes]]:
    base = hdfs_dir(hdfs, name)
    rnd = random.Random(seed)
    files = {f"/class{d}/img{i:03d}.jpg": rnd.randbytes(rnd.randint(lo, hi))
             for d in range(dirs) for i in range(per_dir)}
    for rel, data in files.items():
        hdfs.write_file(base + rel, data)
    return base, files


def _core(hdfs, base: str, cache_dir, **opts) -> HdfsFilesystem:
    kw = {"cache_dir": str(cache_dir), "metadata_ttl": 300.0, "io_timeout": 10.0, **opts}
    return HdfsFilesystem(hdfs, base, MountOptions(**kw))


def _read(core: HdfsFilesystem, rel: str) -> bytes:
    fh = core.open(rel, os.O_RDONLY)
    try:
        got, off = bytearray(), 0
        while chunk := core.read(fh, 1 << 20, off):
            got += chunk
            off += len(chunk)
        return bytes(got)
    finally:
        core.release(fh)


def _settle(core: HdfsFilesystem, timeout: float = 30) -> None:
    """Until no prefetch is queued or in flight."""
    p = core.prefetch
    assert p is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.idle():
            return
        time.sleep(0.02)
    raise AssertionError("the prefetch did not settle")


@pytest.fixture
def closing() -> Iterator[list[HdfsFilesystem]]:
    cores: list[HdfsFilesystem] = []
    yield cores
    for c in cores:
        c.close()


@pytest.mark.minidfs_only   # stops the DataNode: what was prefetched is on the disk
def test_opening_two_files_of_a_directory_prefetches_the_rest(dfs, hdfs, tmp_path,
                                                              closing) -> None:
    base, files = _tree(hdfs, "pf-basic")
    core = _core(hdfs, base, tmp_path / "cache", cache_size=256 * MiB)
    closing.append(core)
    cls0 = sorted(r for r in files if r.startswith("/class0/"))
    for rel in cls0[:2]:
        assert _read(core, rel) == files[rel]
    _settle(core)
    assert core.metrics.value("hdfs_fuse_prefetch_files_total") == len(cls0) - 2
    # the other directories were not touched: the trigger is per directory
    assert core.metrics.value("hdfs_fuse_prefetch_bytes_total") == sum(
        len(files[r]) for r in cls0[2:])
    dfs.stop_datanode(0)
    try:
        for rel in cls0[2:]:
            assert _read(core, rel) == files[rel], rel
    finally:
        dfs.start_datanode(0)
    assert core.metrics.value("hdfs_fuse_prefetch_hits_total") == len(cls0) - 2


@pytest.mark.minidfs_only   # counts the NameNode's calls per method
def test_a_batch_is_checked_by_one_listing_not_a_status_call_per_file(dfs, hdfs, tmp_path,
                                                                     closing) -> None:
    from fuse_mount.prefetch import BATCH_FILES
    per_dir = 2 + 2 * BATCH_FILES
    base, files = _tree(hdfs, "pf-batch", dirs=1, per_dir=per_dir, lo=20_000, hi=60_000)
    core = _core(hdfs, base, tmp_path / "cache", cache_size=256 * MiB,
                 prefetch_streams=1)
    closing.append(core)
    rels = sorted(files)
    for rel in rels[:2]:
        assert _read(core, rel) == files[rel]
    calls = dfs.faults.calls
    infos, listings = calls.get("getFileInfo", 0), calls.get("getListing", 0)
    _settle(core)
    assert core.metrics.value("hdfs_fuse_prefetch_files_total") == per_dir - 2
    # the prefetched files, two batches of BATCH_FILES: one listing each, no getFileInfo
    assert calls.get("getFileInfo", 0) - infos <= 1
    assert calls.get("getListing", 0) - listings <= 3
    for rel in rels[2:]:
        assert _read(core, rel) == files[rel], rel
    assert core.metrics.value("hdfs_fuse_prefetch_hits_total") == per_dir - 2
    # the next epoch (a new mount over the same cache): all held, nothing to fetch or check
    closing.remove(core)
    core.close()
    again = _core(hdfs, base, tmp_path / "cache", cache_size=256 * MiB, prefetch_streams=1)
    closing.append(again)
    for rel in rels[:2]:
        assert _read(again, rel) == files[rel]
    listings = calls.get("getListing", 0)
    _settle(again)
    assert again.metrics.value("hdfs_fuse_prefetch_files_total") == 0
    assert calls.get("getListing", 0) - listings <= 1


def test_a_stopped_pattern_fetches_no_more_than_the_lead(hdfs, tmp_path, closing) -> None:
    base, files = _tree(hdfs, "pf-lead", dirs=1, per_dir=40, lo=150_000, hi=250_000)
    # the lead is a quarter of the cache: 2 MiB, about ten of these files
    core = _core(hdfs, base, tmp_path / "cache", cache_size=8 * MiB)
    closing.append(core)
    rels = sorted(files)
    for rel in rels[:2]:
        assert _read(core, rel) == files[rel]
    _settle(core)
    p = core.prefetch
    assert p is not None and p.stopped is None
    fetched = core.metrics.value("hdfs_fuse_prefetch_bytes_total")
    assert 0 < fetched <= p.lead_bytes, (fetched, p.lead_bytes)
    assert fetched < sum(len(files[r]) for r in rels[2:])   # it did stop short
    # opening one consumes the lead and lets the prefetch go on
    before = core.metrics.value("hdfs_fuse_prefetch_files_total")
    for rel in rels[2:6]:
        assert _read(core, rel) == files[rel]
    _settle(core)
    assert core.metrics.value("hdfs_fuse_prefetch_files_total") > before


def test_it_stops_for_good_when_the_cache_is_full_and_serves_every_byte(hdfs, tmp_path,
                                                                        closing) -> None:
    base, files = _tree(hdfs, "pf-full", dirs=2, per_dir=30, lo=150_000, hi=250_000)
    core = _core(hdfs, base, tmp_path / "cache", cache_size=4 * MiB)
    closing.append(core)
    rels = sorted(files)
    random.Random(1).shuffle(rels)
    for rel in rels:                        # a shuffled epoch over 12 MB through a 4 MiB cache
        assert _read(core, rel) == files[rel], rel
    _settle(core)
    p = core.prefetch
    assert p is not None and p.stopped is not None and "full" in p.stopped
    assert core.metrics.value("hdfs_fuse_prefetch_stops_total") == 1
    assert core.cache is not None and core.cache.used_bytes <= core.cache.max_bytes
    with p._lock:
        assert not p._queue


def test_sequential_shards_above_the_threshold_cost_nothing(hdfs, tmp_path, closing) -> None:
    base, files = _tree(hdfs, "pf-shards", dirs=1, per_dir=6, lo=5 * MiB, hi=6 * MiB)
    core = _core(hdfs, base, tmp_path / "cache", cache_size=256 * MiB)
    closing.append(core)
    for rel in sorted(files):
        assert _read(core, rel) == files[rel]
    _settle(core)
    assert core.metrics.value("hdfs_fuse_prefetch_files_total") == 0
    # every byte that came from HDFS was one a reader asked for, once
    assert core.metrics.value("hdfs_fuse_hdfs_read_bytes_total") == sum(
        len(d) for d in files.values())


def test_zero_turns_it_off(hdfs, tmp_path, closing) -> None:
    base, files = _tree(hdfs, "pf-off", dirs=1, per_dir=4)
    core = _core(hdfs, base, tmp_path / "cache", prefetch_max_size=0)
    closing.append(core)
    assert core.prefetch is None
    for rel in sorted(files):
        assert _read(core, rel) == files[rel]
    no_cache = HdfsFilesystem(hdfs, base, MountOptions(io_timeout=10.0))
    closing.append(no_cache)
    assert no_cache.prefetch is None         # nowhere to put whole files but memory


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changed=hst.sets(hst.integers(0, 15), max_size=8), delay_ms=hst.integers(0, 40),
       seed=hst.integers(0, 1000))
def test_files_replaced_during_a_prefetch_are_never_served_wrong(hdfs, tmp_path_factory,
                                                                 changed: set[int],
                                                                 delay_ms: int,
                                                                 seed: int) -> None:
    """Replace some files in HDFS while the prefetch fetches them; once the metadata
    has expired, every file reads as what HDFS holds now."""
    base = hdfs_dir(hdfs, "pf-race")
    rnd = random.Random(seed)
    now = {f"/d/f{i:02d}": rnd.randbytes(rnd.randint(1, 300_000)) for i in range(16)}
    for rel, data in now.items():
        hdfs.write_file(base + rel, data)
    core = HdfsFilesystem(hdfs, base, MountOptions(
        cache_dir=str(tmp_path_factory.mktemp("pfcache")), metadata_ttl=0.2, io_timeout=10))
    try:
        order = sorted(now)
        rnd.shuffle(order)
        for rel in order[:2]:                      # the trigger
            assert _read(core, rel) == now[rel]
        time.sleep(delay_ms / 1000)
        for i in sorted(changed):
            rel = f"/d/f{i:02d}"
            now[rel] = rnd.randbytes(rnd.randint(1, 300_000))
            hdfs.write_file(base + rel, now[rel])  # a new file id
        _settle(core)
        time.sleep(0.3)                            # past --metadata-ttl
        for rel in order:
            assert _read(core, rel) == now[rel], rel
    finally:
        core.close()


def test_a_shuffled_epoch_through_a_real_mount_hits_the_prefetch(dfs, hdfs, mount_factory,
                                                                  tmp_path) -> None:
    base, files = _tree(hdfs, "pf-mount", dirs=4, per_dir=15)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--cache-dir", str(tmp_path / "cache"),
                      "--cache-size", "256M", metrics=True)
    rels = sorted(files)
    random.Random(3).shuffle(rels)
    for rel in rels:
        evict_file(str(m.path / rel.lstrip("/")))
        assert (m.path / rel.lstrip("/")).read_bytes() == files[rel], rel
    got = m.metrics()
    assert got["hdfs_fuse_prefetch_hits_total"] > len(files) // 2, got
    assert got["hdfs_fuse_prefetch_files_total"] >= got["hdfs_fuse_prefetch_hits_total"]
