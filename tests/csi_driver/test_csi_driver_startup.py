"""The driver's start-up failures read as one sentence, never a traceback (issue 14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _driver(tmp_path: Path, endpoint: str, state_dir: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hdfs_csi", "driver", "--mode", "all", "--endpoint", endpoint,
         "--node-id", "n", "--state-dir", state_dir, "--hdfs-uri", "hdfs://127.0.0.1:1"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)


@pytest.mark.parametrize("case", ["socket-dir-is-a-file", "state-dir-is-a-file", "path-too-long"])
def test_an_endpoint_or_state_dir_it_cannot_use_is_one_sentence(tmp_path: Path,
                                                                 case: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    endpoint, state, words = {
        "socket-dir-is-a-file": (f"unix://{afile}/csi.sock", str(tmp_path / "s"),
                                 "cannot create"),
        "state-dir-is-a-file": (f"unix://{tmp_path}/csi.sock", f"{afile}/state",
                                "cannot create --state-dir"),
        "path-too-long": (f"unix://{tmp_path}/{'x' * 120}.sock", str(tmp_path / "s"),
                          "cannot listen on"),
    }[case]
    r = _driver(tmp_path, endpoint, state)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert words in r.stderr, r.stderr
    assert afile.read_text() == "not a directory"
