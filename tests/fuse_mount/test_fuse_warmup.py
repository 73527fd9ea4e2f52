"""``hdfs-csi warmup``: a dataset read once through a real mount is then served
from the disk cache alone, byte for byte; the budget holds; typos fail."""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fuse_kit import hdfs_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from benchmarks.pagecache import evict_file
from fuse_mount import warmup

pytestmark = pytest.mark.timeout(180)


def _warmup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hdfs_csi", "warmup", *args],
                          capture_output=True, text=True, timeout=120)


def _dataset(hdfs, n: int = 40, seed: int = 7) -> tuple[str, dict[str, bytes]]:
    base = hdfs_dir(hdfs, "warm")
    rnd = random.Random(seed)
    files: dict[str, bytes] = {}
    for i in range(n):
        rel = f"class{i % 4}/img{i:03d}.bin"
        files[rel] = rnd.randbytes(rnd.randint(10_000, 300_000))
    files["shards/big.bin"] = rnd.randbytes(3 << 20)
    for rel, data in files.items():
        with hdfs.create(f"{base}/{rel}", overwrite=True, create_parent=True) as w:
            view = memoryview(data)
            while view:
                view = view[w.write(view):]
    return base, files


@pytest.mark.minidfs_only   # stops the DataNode to prove the cache alone serves the bytes
def test_warmed_dataset_is_served_from_the_disk_cache_alone(dfs, hdfs, mount_factory,
                                                           tmp_path: Path) -> None:
    base, files = _dataset(hdfs)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--cache-dir", str(tmp_path / "cache"),
                      "--cache-size", "64M", "--metadata-ttl", "300", metrics=True)
    done = _warmup("--threads", "4", "--json", "-", "--quiet", str(m.path))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["files"] == len(files)
    assert result["bytes"] == sum(len(d) for d in files.values())
    assert "warmed 41 files" in done.stderr
    # the mount writes fetched chunks to its disk cache in the background
    total = sum(len(d) for d in files.values())
    deadline = time.monotonic() + 20
    while m.metrics()["hdfs_fuse_cache_bytes"] < total and time.monotonic() < deadline:
        time.sleep(0.05)
    assert m.metrics()["hdfs_fuse_cache_bytes"] >= total

    dfs.stop_datanode(0)
    try:
        for rel, data in files.items():
            evict_file(str(m.path / rel))    # not the kernel's page cache: the disk cache
            assert (m.path / rel).read_bytes() == data, rel
    finally:
        dfs.start_datanode(0)


def test_the_budget_bounds_what_is_read(dfs, hdfs, mount_factory, tmp_path: Path) -> None:
    base, files = _dataset(hdfs, n=12, seed=3)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--cache-dir", str(tmp_path / "cache"),
                      "--cache-size", "64M")
    budget = 1 << 20
    done = _warmup("--max-bytes", str(budget), "--json", "-", "--quiet", str(m.path))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert 0 < result["bytes"] <= budget
    assert result["skipped_files"] >= 1        # at least the 3 MiB shard did not fit
    assert result["files"] + result["skipped_files"] == len(files)
    assert "skipped: over --max-bytes" in done.stderr


def test_globs_directories_and_lists_name_the_files(tmp_path: Path) -> None:
    for rel in ("a/x.rec", "a/y.txt", "a/b/z.rec", "c.rec"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"1234")
    names = {os.path.relpath(p, tmp_path) for p in warmup.expand([f"{tmp_path}/**/*.rec"])}
    assert names == {"a/x.rec", "a/b/z.rec", "c.rec"}
    walked = [os.path.relpath(p, tmp_path) for p in warmup.expand([str(tmp_path / "a")])]
    assert walked == ["a/x.rec", "a/y.txt", "a/b/z.rec"]
    listing = tmp_path / "list"
    listing.write_text(f"# the train split\n{tmp_path}/c.rec\n\n{tmp_path}/a/y.txt\n")
    assert warmup.read_list(str(listing)) == [f"{tmp_path}/c.rec", f"{tmp_path}/a/y.txt"]
    result = warmup.warm(warmup.expand(warmup.read_list(str(listing))), threads=2)
    assert (result.files, result.bytes, result.failed) == (2, 8, [])


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/dataset"], "no such file or directory"),
    (["/nonexistent/**/*.rec"], "no file matches"),
    ([], "name at least one PATH"),
    (["--threads", "0", "/"], "--threads must be at least 1"),
])
def test_a_typo_fails_instead_of_warming_nothing(args: list[str], message: str) -> None:
    done = _warmup(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_an_unreadable_file_is_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"x" * 1000)
    gone = tmp_path / "gone"
    result = warmup.warm([str(good), str(gone)], threads=2)
    assert result.files == 1 and result.bytes == 1000
    assert [p for p, _ in result.failed] == [str(gone)]


def test_a_large_file_is_read_as_segments_each_counted_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warmup, "SEGMENT", 4096)
    big = tmp_path / "big"
    big.write_bytes(os.urandom(10_000))        # three segments: 4096 + 4096 + 1808
    small = tmp_path / "small"
    small.write_bytes(b"y" * 100)
    result = warmup.warm([str(big), str(small)], threads=3)
    assert (result.files, result.bytes, result.failed) == (2, 10_100, [])


# -- the mount's own warm-up (--warmup, the warmup volume attribute) ---------------------------

def _wait_for_warmup_end(m, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = m.log_text()
        if "warm-up: warmed" in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"the warm-up did not end:\n{m.log_text()[-3000:]}")


@pytest.mark.minidfs_only   # stops the DataNode: what the warm-up named is on the disk
def test_the_mount_warms_what_its_patterns_name_and_nothing_else(dfs, hdfs, mount_factory,
                                                                 tmp_path: Path) -> None:
    base, files = _dataset(hdfs)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--cache-dir", str(tmp_path / "cache"),
                      "--cache-size", "64M", "--metadata-ttl", "300",
                      "--warmup", "class1,class2/img0[0-1]*.bin,**/big.bin",
                      "--prefetch-max-size", "0",   # reading a warmed file would prefetch
                      metrics=True)
    text = _wait_for_warmup_end(m)
    named = {rel for rel in files if rel.startswith("class1/") or rel == "shards/big.bin"
             or (rel.startswith("class2/img0") and rel[len("class2/img0")] in "01")}
    assert f"warm-up: warmed {len(named)} files" in text, text[-2000:]
    assert m.metrics()["hdfs_fuse_warmup_files_total"] == len(named)
    dfs.stop_datanode(0)
    try:
        for rel, data in files.items():
            evict_file(str(m.path / rel))
            if rel in named:
                assert (m.path / rel).read_bytes() == data, rel
            else:
                with pytest.raises(OSError):
                    (m.path / rel).read_bytes()
    finally:
        dfs.start_datanode(0)


def test_a_pattern_that_names_nothing_is_logged_and_the_mount_serves(dfs, hdfs, mount_factory,
                                                                     tmp_path: Path) -> None:
    base, files = _dataset(hdfs, n=4, seed=9)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--cache-dir", str(tmp_path / "cache"),
                      "--cache-size", "64M", "--warmup", "nosuchdir,class0")
    text = _wait_for_warmup_end(m)
    assert "warm-up: nosuchdir: no file matches" in text
    assert "warm-up: warmed 1 files" in text
    assert (m.path / "class1/img001.bin").read_bytes() == files["class1/img001.bin"]


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changed=hst.sets(hst.integers(0, 11), max_size=6), delay_ms=hst.integers(0, 30))
def test_files_replaced_during_a_warmup_are_never_served_wrong(dfs, hdfs, tmp_path_factory,
                                                               changed: set[int],
                                                               delay_ms: int) -> None:
    """Replace some files in HDFS while the mount warms them; once the metadata has
    expired, every file reads as what HDFS holds now, whatever the cache was given."""
    from fuse_mount.fs import HdfsFilesystem
    from fuse_mount.options import MountOptions
    from fuse_mount.warmer import Warmer

    base = hdfs_dir(hdfs, "warmrace")
    rnd = random.Random(len(changed) * 31 + delay_ms)
    now = {f"/f{i:02d}": rnd.randbytes(rnd.randint(1, 400_000)) for i in range(12)}
    for rel, data in now.items():
        hdfs.write_file(base + rel, data)
    cache = tmp_path_factory.mktemp("warmcache")
    core = HdfsFilesystem(hdfs, base, MountOptions(cache_dir=str(cache), metadata_ttl=0.2,
                                                   io_timeout=10))
    try:
        w = Warmer(core, ["."], threads=4)
        w.start()
        time.sleep(delay_ms / 1000)
        for i in sorted(changed):
            rel = f"/f{i:02d}"
            now[rel] = rnd.randbytes(rnd.randint(1, 400_000))
            hdfs.write_file(base + rel, now[rel])          # a new file id
        assert w.done.wait(60)
        time.sleep(0.3)                                    # past --metadata-ttl
        for rel, data in now.items():
            fh = core.open(rel, os.O_RDONLY)
            try:
                got, off = b"", 0
                while chunk := core.read(fh, 1 << 20, off):
                    got += bytes(chunk)
                    off += len(chunk)
            finally:
                core.release(fh)
            assert got == data, rel
    finally:
        core.close()


def test_a_batch_never_caches_a_file_replaced_between_its_listing_and_its_read(
        dfs, hdfs, tmp_path_factory) -> None:
    """The warm-up's batches check identity with one listing after their reads: a file
    replaced after its status was listed (same name, same length: only its file id
    differs) is read as the new file, and must not be cached under the old one's key,
    where a reader still holding the old status would be served it."""
    from fuse_mount.errors import FsError
    from fuse_mount.fs import HdfsFilesystem
    from fuse_mount.options import MountOptions

    base = hdfs_dir(hdfs, "warmid")
    old = {f"/f{i}": os.urandom(50_000) for i in range(6)}
    for rel, data in old.items():
        hdfs.write_file(base + rel, data)
    core = HdfsFilesystem(hdfs, base, MountOptions(cache_dir=str(tmp_path_factory.mktemp("c")),
                                                   metadata_ttl=300, prefetch_max_size=0))
    try:
        entries = [(rel, core.status(rel)) for rel in old]       # listed: the old versions
        new = os.urandom(50_000)
        hdfs.write_file(base + "/f3", new)                        # replaced, same length
        got = core.fill_cache_many(entries)
        assert got == [50_000, 50_000, 50_000, 0, 50_000, 50_000]
        for rel, data in old.items():                             # old statuses: old bytes
            if rel == "/f3":
                with pytest.raises(FsError) as info:              # ESTALE, never `new`
                    fh = core.open(rel, os.O_RDONLY)
                    try:
                        core.read(fh, 1 << 20, 0)
                    finally:
                        core.release(fh)
                assert info.value.errno == errno.ESTALE
                continue
            fh = core.open(rel, os.O_RDONLY)
            try:
                assert bytes(core.read(fh, 1 << 20, 0)) == data
            finally:
                core.release(fh)
    finally:
        core.close()
