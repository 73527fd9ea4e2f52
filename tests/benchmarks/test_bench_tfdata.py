"""The ``tfdata`` bench scenario and the TFRecord framing it relies on.

The framing (:mod:`benchmarks.tfrecord`) is tested without TensorFlow: round
trips, corruption of either checksum, files cut anywhere.  Where TensorFlow
is installed, one subprocess checks both directions against TensorFlow's own
reader and writer, and the scenario runs in every mode through a real FUSE
mount of minidfs; where it is not, the scenario must come back as skipped
with the reason, in every mode, without failing the run.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import bench_kit
import pytest
from bench_kit import check_document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from benchmarks import datasets
from benchmarks.scenarios import ALL, NAMES, RunContext, ScenarioOptions, load
from benchmarks.targets import Entry, Handle, Opener, Target
from benchmarks.tfrecord import (
    HEADER, OVERHEAD, CorruptRecord, RecordSplitter, frame, masked_crc32c, read_records,
    write_records,
)
from fuse_mount import mounts

REPO = Path(__file__).resolve().parents[2]
HAVE_TF = importlib.util.find_spec("tensorflow") is not None
NO_TF = "TensorFlow is not installed (HDFS_CSI_TF=yes scripts/setup.sh installs tensorflow-cpu)"
ALL_MODES = ["local", "direct", "mount-cold", "mount-warm"]

# bench_kit knows the default scenarios; tfdata's figures, for its checks
bench_kit.REQUIRED.setdefault("tfdata", ["mb_per_s", "files_per_s", "latency_p50_ms",
                                         "latency_p99_ms", "ttfb_p50_ms", "wall_s",
                                         "records_per_s"])

records_st = hst.lists(hst.binary(max_size=300), max_size=12)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points + [len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


# -- the framing, without TensorFlow -------------------------------------------------------

def test_masked_crc_matches_tensorflows_known_value() -> None:
    # crc32c("123456789") = 0xE3069283 (the CRC-32C check value); masked as TF does
    crc = 0xE3069283
    assert masked_crc32c(b"123456789") == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF)
                                           + 0xA282EAD8) & 0xFFFFFFFF


def test_a_record_is_framed_as_tensorflow_frames_it() -> None:
    b = frame(b"abc")
    assert len(b) == 3 + OVERHEAD and b[:8] == struct.pack("<Q", 3) and b[HEADER:-4] == b"abc"
    assert struct.unpack("<I", b[8:12])[0] == masked_crc32c(b[:8])
    assert struct.unpack("<I", b[-4:])[0] == masked_crc32c(b"abc")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_st, cuts=hst.lists(hst.integers(min_value=0), max_size=8))
def test_round_trip_however_the_bytes_arrive(records: list[bytes], cuts: list[int]) -> None:
    out = io.BytesIO()
    n = write_records(out, records)
    data = out.getvalue()
    assert n == len(data) == sum(len(r) + OVERHEAD for r in records)
    sp = RecordSplitter()
    got = [r for chunk in _split(data, cuts) for r in sp.feed(chunk)]
    sp.finish()
    assert got == records
    assert list(read_records(io.BytesIO(data), chunk=7)) == records


@settings(max_examples=150, deadline=None)
@given(records=records_st.filter(bool), where=hst.integers(min_value=0), bit=hst.integers(0, 7))
def test_any_flipped_bit_is_detected(records: list[bytes], where: int, bit: int) -> None:
    data = bytearray(b"".join(frame(r) for r in records))
    data[where % len(data)] ^= 1 << bit
    # a flipped bit in a length can also make the file look cut off: either way, an error
    with pytest.raises(CorruptRecord):
        list(read_records(io.BytesIO(bytes(data))))


@settings(max_examples=150, deadline=None)
@given(records=records_st.filter(bool), cut=hst.integers(min_value=0))
def test_a_file_cut_anywhere_but_a_record_boundary_is_detected(records: list[bytes],
                                                               cut: int) -> None:
    data = b"".join(frame(r) for r in records)
    boundaries = [0]
    for r in records:
        boundaries.append(boundaries[-1] + len(r) + OVERHEAD)
    cut %= len(data)
    if cut in boundaries:
        assert list(read_records(io.BytesIO(data[:cut]))) == records[:boundaries.index(cut)]
    else:
        with pytest.raises(CorruptRecord):
            list(read_records(io.BytesIO(data[:cut])))


def test_the_errors_say_what_and_where() -> None:
    good = frame(b"first") + frame(b"second")
    bad = bytearray(good)
    bad[len(frame(b"first")) + HEADER] ^= 0xFF          # a data byte of the second record
    with pytest.raises(CorruptRecord, match=r"data checksum mismatch .* offset 21"):
        list(read_records(io.BytesIO(bytes(bad))))
    bad = bytearray(good)
    bad[0] ^= 1                                          # the first length
    with pytest.raises(CorruptRecord, match="length checksum mismatch at offset 0"):
        list(read_records(io.BytesIO(bytes(bad))))
    with pytest.raises(CorruptRecord, match="truncated record"):
        list(read_records(io.BytesIO(good[:-1])))


def test_the_bench_shards_are_valid_tfrecord_files() -> None:
    for size in (1 << 16, (1 << 16) + 17, 300_001):
        shard = datasets.tfrecord_shard(42, 0, size, 10_000)
        assert len(shard) == size
        recs = list(read_records(io.BytesIO(shard)))
        assert sum(len(r) + OVERHEAD for r in recs) == size
        assert all(len(r) == 10_000 for r in recs[:-1])


# -- the scenario's direct path, on a stand-in for the HDFS seam ----------------------------

class _SeamLike(Target):
    """Not a FileSystemTarget: the scenario takes its direct (no TensorFlow) path."""

    kind = "hdfs"

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, rel: str) -> Handle:
        f = open(self.root / rel, "rb")  # noqa: SIM115

        class H(Handle):
            size = os.fstat(f.fileno()).st_size

            def read(self, n: int) -> bytes:
                return f.read(n)

            def close(self) -> None:
                f.close()
        return H()

    def listdir(self, rel: str) -> list[Entry]:
        raise NotImplementedError

    def stat(self, rel: str) -> Entry:
        raise NotImplementedError

    def arrow_filesystem(self) -> tuple[Any, str]:
        raise NotImplementedError

    def opener(self) -> Opener:
        raise NotImplementedError

    def describe(self) -> str:
        return "seam-like"


def _shards(tmp_path: Path, n: int = 3, size: int = 200_000) -> dict[str, list[Any]]:
    files = {}
    for i in range(n):
        rel = f"seq/shard-{i:05d}.tfrecord"
        data = datasets.tfrecord_shard(7, i, size, 9_000)
        (tmp_path / "seq").mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(data)
        files[rel] = [len(data), "-"]
    return files


def test_direct_path_counts_every_record_and_byte(tmp_path: Path) -> None:
    files = _shards(tmp_path)
    ctx = RunContext("direct", files, ScenarioOptions(block_size=4096, batch_size=5))
    res = load("tfdata").run(_SeamLike(tmp_path), ctx)
    assert res.status == "ok" and res.metrics is not None
    m = res.metrics
    assert m.bytes == 3 * 200_000 and m.files == 3
    assert m.extra["records"] == 3 * 23 and m.extra["batches"] == 14
    assert m.extra["reader"].startswith("HDFS seam")


def test_direct_path_fails_on_a_corrupt_shard(tmp_path: Path) -> None:
    files = _shards(tmp_path)
    p = tmp_path / "seq/shard-00001.tfrecord"
    data = bytearray(p.read_bytes())
    data[150_000] ^= 0x10
    p.write_bytes(bytes(data))
    ctx = RunContext("direct", files, ScenarioOptions(block_size=4096, batch_size=5))
    with pytest.raises(CorruptRecord, match="data checksum mismatch"):
        load("tfdata").run(_SeamLike(tmp_path), ctx)


def test_tfdata_is_selectable_but_not_a_default() -> None:
    assert "tfdata" in ALL and "tfdata" not in NAMES
    assert datasets.SCENARIO_PART["tfdata"] == "seq"


# -- against TensorFlow itself ------------------------------------------------------------

_TF_INTEROP = textwrap.dedent("""
    import io, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"; os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    import tensorflow as tf
    from benchmarks.tfrecord import frame, read_records, write_records
    d = sys.argv[1]
    recs = [b"", b"x", bytes(range(256)) * 40, b"last"]
    with open(f"{d}/ours.tfrecord", "wb") as f:
        write_records(f, recs)
    got = [t.numpy() for t in tf.data.TFRecordDataset(f"{d}/ours.tfrecord")]
    assert got == recs, got
    with tf.io.TFRecordWriter(f"{d}/theirs.tfrecord") as w:
        for r in recs:
            w.write(r)
    with open(f"{d}/theirs.tfrecord", "rb") as f:
        assert list(read_records(f)) == recs
    bad = bytearray(frame(b"payload"))
    bad[14] ^= 1
    with open(f"{d}/bad.tfrecord", "wb") as f:
        f.write(bad)
    try:
        list(tf.data.TFRecordDataset(f"{d}/bad.tfrecord"))
    except tf.errors.DataLossError as exc:
        print("tf rejects a bad CRC:", type(exc).__name__)
    else:
        raise AssertionError("TensorFlow read a record with a bad CRC")
    print("ok")
""")


@pytest.mark.skipif(not HAVE_TF, reason=NO_TF)
@pytest.mark.timeout(120)
def test_tensorflow_reads_what_we_write_and_we_read_what_it_writes(tmp_path: Path) -> None:
    # in a subprocess: TensorFlow's threads and allocator stay out of the test process
    r = subprocess.run([sys.executable, "-c", _TF_INTEROP, str(tmp_path)], cwd=REPO,
                       capture_output=True, text=True, timeout=110)
    assert r.returncode == 0 and r.stdout.endswith("ok\n"), r.stderr[-3000:]


# -- the scenario in `hdfs-csi bench` -----------------------------------------------------

def _bench(tmp_path: Path, modes: list[str], env: dict[str, str] | None = None,
           timeout: float = 240) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "hdfs_csi", "bench", "--quick", "--scale", "0.1",
           "--scenarios", "tfdata", "--modes", ",".join(modes), "--no-progress",
           "--json", str(out), "--plot", str(tmp_path / "bench.png"),
           "--data-dir", str(tmp_path / "data"), "--work-dir", str(tmp_path / "work")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                       stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout}\n{r.stderr[-4000:]}"
    assert "tfdata" in r.stdout
    doc: dict[str, Any] = json.loads(out.read_text())
    assert not [m for m in mounts.mount_table() if m.mountpoint.startswith(str(tmp_path))]
    return doc


@pytest.mark.fuse
@pytest.mark.skipif(mounts.fuse_unavailable_reason() is not None,
                    reason=mounts.fuse_unavailable_reason() or "")
@pytest.mark.timeout(300)
def test_tfdata_runs_in_every_mode_through_a_real_mount(tmp_path: Path) -> None:
    # without TensorFlow the same run must pass, every mode skipped with the reason
    doc = _bench(tmp_path, ALL_MODES)
    by_key = check_document(doc, ["tfdata"], ALL_MODES,
                            allow_skip=set() if HAVE_TF else {"tfdata"})
    for mode in ALL_MODES:
        r = by_key[("tfdata", mode)]
        if not HAVE_TF:
            assert r["status"] == "skipped" and "TensorFlow is not installed" in r["reason"]
            continue
        m = r["metrics"]
        assert m["records"] > 0 and m["readers"] >= 1
        want = "HDFS seam" if mode == "direct" else "tf.data.TFRecordDataset"
        assert m["reader"].startswith(want)


def test_tfdata_without_tensorflow_is_skipped_with_the_reason(tmp_path: Path) -> None:
    # hide TensorFlow from the bench process, as on a machine without it: a None in
    # sys.modules makes the import fail and find_spec report it missing
    hide = tmp_path / "no-tf"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['tensorflow'] = None\n")
    path = os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")])
    doc = _bench(tmp_path, ["local"], env={"PYTHONPATH": path.rstrip(os.pathsep)})
    (r,) = doc["results"]
    assert r["status"] == "skipped", r
    assert r["reason"].startswith("TensorFlow is not installed (ModuleNotFoundError")
    assert "HDFS_CSI_TF=yes" in r["reason"]
