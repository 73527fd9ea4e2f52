"""`hdfs-csi bench` end to end: minidfs started by the command, real FUSE mounts.

The quick run in full (every scenario, every mode) is the acceptance test of
the issue; a smaller cut of it (`--scale`, a hidden flag) runs in the default
tier so every pull request exercises minidfs + mount + JSON schema.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from benchcheck import check_document

from benchmarks.environment import MountProcess
from benchmarks.scenarios import NAMES
from fuse_mount import mounts

ALL_MODES = ["local", "direct", "mount-cold", "mount-warm"]


def _fuse_skip_reason():
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if not shutil.which("fusermount3"):
        return "fusermount3 is not installed"
    return None


needs_fuse = pytest.mark.skipif(_fuse_skip_reason() is not None,
                                reason=_fuse_skip_reason() or "")


def _bench(args, tmp_path, timeout):
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    cmd = [sys.executable, "-m", "hdfs_csi", "bench", *args, "--json", str(out_json),
           "--plot", str(out_png), "--data-dir", str(tmp_path / "data"),
           "--work-dir", str(tmp_path / "work")]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    took = time.monotonic() - t0
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(out_json.read_text())
    # nothing left mounted under the work dir, no minidfs left running
    assert not [m for m in mounts.mount_table()
                if m.mountpoint.startswith(str(tmp_path / "work"))]
    return doc, proc.stdout, took


@needs_fuse
@pytest.mark.fuse
@pytest.mark.timeout(300)
def test_small_cut_every_mode(tmp_path):
    scenarios = ["seq", "small", "meta", "parquet"]
    doc, table, _ = _bench(["--quick", "--scale", "0.1", "--scenarios", ",".join(scenarios),
                            "--no-progress"], tmp_path, 280)
    check_document(doc, scenarios, ALL_MODES)
    for sc in scenarios:
        for mode in ALL_MODES:
            assert any(line.startswith(sc) and f" {mode} " in line for line in table.splitlines())
    assert doc["environment"]["minidfs"] is True


@needs_fuse
@pytest.mark.fuse
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_run_every_scenario_and_mode(tmp_path):
    doc, _, took = _bench(["--quick", "--no-progress"], tmp_path, 580)
    check_document(doc, list(NAMES), ALL_MODES, allow_skip={"dataloader"})
    print(f"hdfs-csi bench --quick took {took:.0f} s")


@needs_fuse
@pytest.mark.fuse
@pytest.mark.timeout(240)
def test_existing_mountpoint_runs_mount_modes_and_local(tmp_path, minidfs, hdfs):
    # what a platform engineer does in a pod: measure a mount someone else made
    data = tmp_path / "data"
    prep = subprocess.run(
        [sys.executable, "-m", "hdfs_csi", "bench", "--quick", "--scale", "0.05", "--prepare",
         "--scenarios", "seq", "--hdfs-uri", minidfs.uri, "--hdfs-path", "/pods",
         "--data-dir", str(data), "--no-progress"],
        capture_output=True, text=True, timeout=200)
    assert prep.returncode == 0, prep.stderr
    assert "seq: uploaded" in prep.stdout
    m = MountProcess(f"{minidfs.uri}/pods", str(tmp_path / "mnt"), cache_dir=str(tmp_path / "c"),
                     log_file=str(tmp_path / "mount.log"), pid_file=str(tmp_path / "mount.pid"))
    with m:
        doc, _, _ = _bench(["--quick", "--scale", "0.05", "--scenarios", "seq", "--mountpoint",
                            m.mountpoint, "--mount-subdir", "quick-x0.05", "--no-progress"],
                           tmp_path, 200)
    check_document(doc, ["seq"], ["local", "mount-cold", "mount-warm"])
    assert not any(r["mode"] == "direct" for r in doc["results"])
    cold = next(r for r in doc["results"] if r["mode"] == "mount-cold")
    assert "not cleared" in cold["notes"]["cold"]
