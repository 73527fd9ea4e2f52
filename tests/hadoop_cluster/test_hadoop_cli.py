"""``--backend hadoop`` of ``hdfs-csi bench`` and ``hdfs-csi demo``, end to end.

The commands start Apache Hadoop's HDFS themselves, run against it through
real FUSE mounts and tear everything down: no mount and no JVM left behind.
Small cuts of each (the full quick benchmark is not for a shared CI box);
argument checks run in the default tier (they fail before any JVM starts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuse_mount import mounts
from hdfs_backends import backend_unavailable

needs_fuse = pytest.mark.skipif(mounts.fuse_unavailable_reason() is not None,
                                reason=mounts.fuse_unavailable_reason() or "")


def _hdfs_csi(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HADOOP_CONF_DIR", "HADOOP_HOME")}
    return subprocess.run([sys.executable, "-m", "hdfs_csi", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def _require_hadoop() -> None:
    reason = backend_unavailable("hadoop")
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"hadoop backend unavailable in CI: {reason}")
    pytest.skip(reason)


def _jvms_under(path: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"HdfsCsiMiniCluster" in cmdline and str(path).encode() in cmdline:
            found.append(int(pid))
    return found


def test_bench_refuses_backend_with_what_it_cannot_combine(tmp_path: Path) -> None:
    proc = _hdfs_csi("bench", "--quick", "--backend", "hadoop", "--profile", "remote-1g",
                     "--data-dir", str(tmp_path), timeout=60)
    assert proc.returncode != 0 and "throttles minidfs only" in proc.stderr
    proc = _hdfs_csi("bench", "--quick", "--backend", "hadoop", "--hdfs-uri", "hdfs://nn:8020",
                     "--data-dir", str(tmp_path), timeout=60)
    assert proc.returncode != 0 and "--backend picks the HDFS to start" in proc.stderr


@pytest.mark.hadoop
@pytest.mark.fuse
@needs_fuse
@pytest.mark.timeout(900)
def test_bench_runs_against_hadoop(tmp_path: Path) -> None:
    _require_hadoop()
    out = tmp_path / "bench.json"
    proc = _hdfs_csi("bench", "--quick", "--scale", "0.05", "--backend", "hadoop",
                     "--scenarios", "seq,small,meta", "--modes", "local,direct,mount-cold",
                     "--no-progress", "--data-dir", str(tmp_path / "data"),
                     "--work-dir", str(tmp_path / "work"), "--json", str(out),
                     "--plot", str(tmp_path / "bench.png"), timeout=880)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-4000:]}"
    doc = json.loads(out.read_text())
    assert doc["environment"]["backend"] == "hadoop" and doc["options"]["backend"] == "hadoop"
    ok = {(r["scenario"], r["mode"]) for r in doc["results"] if r["status"] == "ok"}
    assert {("seq", "direct"), ("seq", "mount-cold"), ("small", "mount-cold")} <= ok
    # the dataset lives in Hadoop's storage, kept for the next run
    assert (tmp_path / "data" / "hadoop").is_dir()
    assert _jvms_under(tmp_path) == []
    assert not [m for m in mounts.mount_table() if m.mountpoint.startswith(str(tmp_path))]


@pytest.mark.hadoop
@pytest.mark.fuse
@needs_fuse
@pytest.mark.timeout(900)
def test_demo_runs_against_hadoop(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the demo bind-mounts like kubelet and needs root")
    _require_hadoop()
    proc = _hdfs_csi("demo", "--backend", "hadoop", "--images", "20", "--shards", "1",
                     "--shard-size", "4M", "--workdir", str(tmp_path), timeout=880)
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "Hadoop HDFS is serving hdfs://127.0.0.1:" in proc.stdout
    assert "every byte verified against HDFS" in proc.stdout
    assert "no mount left behind" in proc.stdout
    assert _jvms_under(tmp_path) == []
