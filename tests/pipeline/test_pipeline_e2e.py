"""Spark to PyTorch and TensorFlow through the CSI driver, on both backends (issue 18).

One run of :func:`hdfs_csi.pipeline.run_pipeline` per backend (``dfs``: minidfs, and
Apache Hadoop's HDFS under the ``hadoop`` marker): a real Spark job writes the training
set into HDFS, a snapshot pins it, the driver stages and publishes it read-only, and
pyarrow.dataset, a PyTorch job and a TensorFlow job read it through the mount.  The
assertions are the issue's: row- and byte-exact agreement with what Spark wrote.  While
the volume is still mounted, the training scripts of the example manifests
(deploy/examples/spark-pytorchjob.yaml, spark-tf-job.yaml) run against the same mounts
and must agree with Spark's ``_pipeline.json`` too.

Tier: ``pipeline`` (and ``slow``); ``scripts/setup-pipeline.sh`` installs what it needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pipeline_kit import script

from hdfs_csi import pipeline

REASON = pipeline.pipeline_unavailable()
pytestmark = [pytest.mark.pipeline, pytest.mark.slow, pytest.mark.timeout(1200),
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

ROWS = 4000


def _run_example_script(manifest: str, mount: str, tmp: Path) -> dict[str, Any]:
    path = tmp / f"{manifest}.py"
    path.write_text(script(manifest))
    env = {**pipeline._subprocess_env(), "DATA_DIR": mount, "WORKERS": "2"}
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          env=env, timeout=600, stdin=subprocess.DEVNULL)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"{manifest}: no result (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    result = dict(json.loads(lines[-1]))
    result["exit"] = proc.returncode
    return result


@pytest.fixture(scope="module")
def run(dfs: Any, dfs_backend: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("pipeline")
    examples: dict[str, Any] = {}
    snapshots: list[str] = []

    def while_mounted(mounts: dict[str, str]) -> None:
        snapshots.extend(sorted(os.listdir(os.path.join(mounts["pytorch"], pipeline.TFRECORD))))
        examples["torch"] = _run_example_script("spark-pytorchjob.yaml", mounts["pytorch"], tmp)
        examples["tf"] = _run_example_script("spark-tf-job.yaml", mounts["tensorflow"], tmp)

    lines: list[str] = []
    report = pipeline.run_pipeline(dfs.uri, str(tmp / "work"), backend=dfs_backend, rows=ROWS,
                                   progress=lines.append, while_mounted=while_mounted)
    print("\n".join(lines))
    return {"report": report, "examples": examples, "mounted_shards": snapshots,
            "lines": lines, "work": tmp / "work"}


def test_spark_kept_the_valid_records(run: dict[str, Any]) -> None:
    report = run["report"]
    spark = report.spark
    assert spark["raw_records"] == ROWS
    assert 0.95 * ROWS < spark["rows"] < ROWS          # the malformed ~3% are dropped
    assert spark["spark_version"].startswith("4.")
    assert spark["hadoop_client"].startswith("3.")
    assert "tf.io.TFRecordWriter" in spark["tfrecord_writer"]
    assert report.stage("Spark job").rows == spark["rows"]


def test_every_reader_agrees_with_spark_exactly(run: dict[str, Any]) -> None:
    report = run["report"]
    assert report.agreement == {"manifest": [], "pyarrow.dataset": [], "pytorch": [],
                                "tensorflow": []}
    rows = report.spark["rows"]
    for name in ("pyarrow.dataset (Parquet)", "PyTorch DataLoader epoch (Parquet)",
                 "TensorFlow tf.data epoch (TFRecord)"):
        assert report.stage(name).rows == rows, name
    expected = report.spark["checksum"]
    for job in ("pytorch", "tensorflow"):
        assert report.jobs[job]["checksum"] == expected, job


def test_the_jobs_read_every_file_of_the_snapshot(run: dict[str, Any]) -> None:
    jobs = run["report"].jobs
    torch_files, tf_files = jobs["pytorch"]["files"], jobs["tensorflow"]["files"]
    assert len(tf_files) == 4 and all(f.startswith("tfrecord/part-") for f in tf_files)
    assert len(torch_files) >= 4 and all(f.startswith("parquet/day=") for f in torch_files)
    assert {f.split("/")[1] for f in torch_files} == {f"day={d}" for d in range(4)}
    for files in (torch_files, tf_files):
        assert all(len(digest) == 64 for _size, digest in files.values())


def test_the_volume_is_pinned_to_the_snapshot(run: dict[str, Any]) -> None:
    """After the snapshot the live directory lost shard 0 and gained a file; the mounted
    version still has shard 0 and no late file."""
    assert "part-00000-of-00004.tfrecord" in run["mounted_shards"]
    assert "late-arrival.parquet" not in run["report"].jobs["pytorch"]["files"]
    assert run["report"].snapshot.startswith("spark-local-")


def test_one_epoch_trained(run: dict[str, Any]) -> None:
    for job in run["report"].jobs.values():
        assert job["batches"] >= 10
        assert job["loss_last_quarter"] < job["loss_first_quarter"], job["job"]


def test_example_manifest_scripts_agree_with_spark(run: dict[str, Any]) -> None:
    for name, res in run["examples"].items():
        assert res["ok"] is True and res["exit"] == 0, (name, res)
        assert res["read"]["rows"] == run["report"].spark["rows"]


def test_nothing_left_mounted_and_snapshot_deleted(run: dict[str, Any], dfs: Any) -> None:
    from fuse_mount.mounts import unmount_under
    from hdfs_client import connect

    assert unmount_under(str(run["work"])) == ([], [])
    client = connect(dfs.uri)
    try:
        assert not client.exists(f"{pipeline.OUT_DIR}/.snapshot/{run['report'].snapshot}")
    finally:
        client.close()


def test_progress_and_summary(run: dict[str, Any]) -> None:
    text = "\n".join(run["lines"])
    for step in ("[1/6]", "[2/6]", "[3/6]", "[4/6]", "[5/6]", "[6/6]"):
        assert step in text
    assert "agreement with Spark: exact" in text
    assert "rows/s" in text and "MB/s" in text
