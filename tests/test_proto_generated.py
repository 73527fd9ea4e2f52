"""The committed ``hdfs_csi_pb`` modules must match the ``.proto`` sources."""

from __future__ import annotations

import filecmp
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_generated_code_is_up_to_date(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("grpc_tools")
    subprocess.run([sys.executable, str(REPO / "proto" / "generate.py"), "--out", str(tmp_path)],
                   check=True)
    fresh = sorted(p.relative_to(tmp_path) for p in (tmp_path / "hdfs_csi_pb").rglob("*.py*"))
    assert fresh, "no .proto sources found"
    stale = [str(rel) for rel in fresh
             if not (REPO / rel).exists()
             or not filecmp.cmp(tmp_path / rel, REPO / rel, shallow=False)]
    assert not stale, f"run `python proto/generate.py`; stale generated files: {stale}"
