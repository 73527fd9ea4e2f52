"""``hdfs-csi warmup``: a dataset read once through a real mount is then served
from the disk cache alone, byte for byte; the budget holds; typos fail."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fuse_kit import hdfs_dir

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
