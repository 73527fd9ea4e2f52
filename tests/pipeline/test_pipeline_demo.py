"""``hdfs-csi demo --pipeline`` as a user runs it: progress, a summary, a clean exit, and
no mount left behind when it is stopped half-way (tier ``pipeline``, minidfs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hdfs_csi import pipeline

REASON = pipeline.pipeline_unavailable()
pytestmark = [pytest.mark.pipeline, pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]
REPO = Path(__file__).resolve().parents[2]


def _demo(workdir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hdfs_csi", "demo", "--pipeline",
                             "--workdir", str(workdir), *extra],
                            cwd=REPO, env=pipeline._subprocess_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def _mounts_under(path: Path) -> list[str]:
    from fuse_mount.mounts import mount_table

    prefix = os.path.realpath(path) + os.sep
    return [e.mountpoint for e in mount_table() if (e.mountpoint + os.sep).startswith(prefix)]


def test_demo_pipeline_runs_and_summarises(tmp_path: Path) -> None:
    proc = _demo(tmp_path)
    out, _ = proc.communicate(timeout=800)
    assert proc.returncode == 0, out[-4000:]
    for expected in ("[1/6] raw records", "[2/6] Spark job", "[3/6] snapshot",
                     "[4/6] CSI driver", "[5/6] readers through the mount",
                     "PyTorch DataLoader epoch (Parquet)", "TensorFlow tf.data epoch (TFRecord)",
                     "agreement with Spark: exact", "demo finished"):
        assert expected in out, expected
    assert _mounts_under(tmp_path) == []
    assert os.listdir(tmp_path) == [], "the work directory is removed after a clean run"


def test_demo_pipeline_stopped_while_mounted_leaves_no_mount(tmp_path: Path) -> None:
    proc = _demo(tmp_path)
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 600
    for line in proc.stdout:
        seen.append(line)
        if "TF pod sees" in line:
            break
        assert time.monotonic() < deadline, "".join(seen)
    else:
        pytest.fail("the demo ended before mounting:\n" + "".join(seen))
    assert _mounts_under(tmp_path), "the volume is mounted now"
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest
    assert _mounts_under(tmp_path) == []
