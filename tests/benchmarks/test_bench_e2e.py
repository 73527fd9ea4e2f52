"""`hdfs-csi bench` end to end: minidfs started by the command, real FUSE mounts.

The quick run in full (every scenario, every mode) is the acceptance test of
the issue; a smaller cut of it (`--scale`, a hidden flag) runs in the default
tier so every pull request exercises minidfs + mount + JSON schema.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from bench_kit import check_document

from benchmarks.environment import MountProcess
from benchmarks.runner import BenchConfig
from benchmarks.scenarios import NAMES
from fuse_mount import mounts

ALL_MODES = ["local", "direct", "mount-cold", "mount-warm"]


needs_fuse = pytest.mark.skipif(mounts.fuse_unavailable_reason() is not None,
                                reason=mounts.fuse_unavailable_reason() or "")


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
@pytest.mark.timeout(600)
def test_quick_run_every_scenario_and_mode(tmp_path):
    # the acceptance run: ~30 s on 2 idle cores, so it stays in the default tier
    doc, table, took = _bench(["--quick", "--no-progress"], tmp_path, 580)
    check_document(doc, list(NAMES), ALL_MODES, allow_skip={"dataloader"})
    for sc in NAMES:
        for mode in ALL_MODES:
            assert any(line.startswith(sc) and f" {mode} " in line for line in table.splitlines())
    assert doc["environment"]["minidfs"] is True
    assert {d["where"] for d in doc["datasets"]} >= {"local"}
    print(f"hdfs-csi bench --quick took {took:.0f} s")


@needs_fuse
@pytest.mark.fuse
@pytest.mark.timeout(300)
def test_mount_warmup_mode_reads_after_the_mount_warmed_the_whole_dataset(tmp_path):
    doc, table, _ = _bench(["--quick", "--scale", "0.25", "--scenarios", "small", "--modes",
                            "mount-cold,mount-warmup", "--no-progress"], tmp_path, 280)
    by_key = check_document(doc, ["small"], ["mount-cold", "mount-warmup"])
    assert any(line.startswith("small") and " mount-warmup " in line
               for line in table.splitlines())
    # the pass began only after the mount's warm-up had read every file of the dataset
    log = (tmp_path / "work" / "mount-small" / "mount.log").read_text()
    files = by_key[("small", "mount-warmup")]["metrics"]["files"]
    assert f"warm-up: warmed {files:,} files" in log, log[-2000:]
    assert "mount-warmup" not in BenchConfig().modes, "mount-warmup runs only when named"


def _bench_interrupted_while_mounted(tmp_path, work) -> tuple[int, str, str]:
    # Ctrl-C must reach the bench even when this test runs as a background job:
    # a non-interactive shell starts those with SIGINT ignored, children inherit
    # that, and Python then keeps ignoring it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "hdfs_csi", "bench", "--quick", "--scale", "0.1", "--scenarios",
         "seq", "--modes", "mount-cold,mount-warm", "--data-dir", str(tmp_path / "data"),
         "--work-dir", str(work), "--json", str(tmp_path / "x.json"), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and proc.poll() is None:
            if any(m.mountpoint.startswith(str(work)) for m in mounts.mount_table()):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "bench finished before a mount was seen"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


@needs_fuse
@pytest.mark.fuse
@pytest.mark.timeout(180)
def test_interrupt_tears_down_mount_and_minidfs(tmp_path):
    work = tmp_path / "work"
    rc, out, err = _bench_interrupted_while_mounted(tmp_path, work)
    assert rc == 130, f"exit {rc}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-2000:]}"
    assert "interrupted" in err
    assert not [m for m in mounts.mount_table() if m.mountpoint.startswith(str(work))]
    # no process (minidfs, mount daemon) still refers to this test's directories
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if str(tmp_path).encode() in f.read():
                        left.append(pid)
            except OSError:
                pass
    assert not left, f"processes left behind: {left}"


@needs_fuse
@pytest.mark.fuse
@pytest.mark.timeout(240)
def test_existing_mountpoint_runs_mount_modes_and_local(tmp_path, dfs, hdfs):
    # what a platform engineer does in a pod: measure a mount someone else made
    data = tmp_path / "data"
    prep = subprocess.run(
        [sys.executable, "-m", "hdfs_csi", "bench", "--quick", "--scale", "0.05", "--prepare",
         "--scenarios", "seq", "--hdfs-uri", dfs.uri, "--hdfs-path", "/pods",
         "--data-dir", str(data), "--no-progress"],
        capture_output=True, text=True, timeout=200)
    assert prep.returncode == 0, prep.stderr
    assert "seq: uploaded" in prep.stdout
    m = MountProcess(f"{dfs.uri}/pods", str(tmp_path / "mnt"), cache_dir=str(tmp_path / "c"),
                     log_file=str(tmp_path / "mount.log"), pid_file=str(tmp_path / "mount.pid"))
    with m:
        doc, _, _ = _bench(["--quick", "--scale", "0.05", "--scenarios", "seq", "--mountpoint",
                            m.mountpoint, "--mount-subdir", "quick-x0.05", "--no-progress"],
                           tmp_path, 200)
    check_document(doc, ["seq"], ["local", "mount-cold", "mount-warm"])
    assert not any(r["mode"] == "direct" for r in doc["results"])
    cold = next(r for r in doc["results"] if r["mode"] == "mount-cold")
    assert "not cleared" in cold["notes"]["cold"]


@needs_fuse
@pytest.mark.fuse
@pytest.mark.timeout(120)
def test_an_interrupt_once_the_mount_is_up_leaves_nothing_mounted(dfs, tmp_path, monkeypatch):
    """Ctrl-C after the mount helper returned, while the bench waits for the mount to
    answer (seen in a CI rehearsal: test_interrupt_tears_down_mount_and_minidfs found a
    mount left).  The instant cannot be hit on demand from outside, so it is made here."""
    real = mounts.wait_mounted

    def interrupted(path, timeout=10.0):
        assert real(path, timeout)       # the mount is up ...
        raise KeyboardInterrupt          # ... and Ctrl-C arrives now

    monkeypatch.setattr(mounts, "wait_mounted", interrupted)
    mnt = tmp_path / "mnt"
    proc = MountProcess(f"{dfs.uri}/", str(mnt), cache_dir=None,
                        log_file=str(tmp_path / "mount.log"), pid_file=str(tmp_path / "pid"))
    with pytest.raises(KeyboardInterrupt):
        proc.start()
    assert not [m for m in mounts.mount_table() if m.mountpoint == str(mnt)]
