"""From Spark to the training jobs: the pipeline hdfs-csi exists for, end to end (issue 18).

A platform team's path, with the real tools on one machine:

1. **Raw records** (JSON lines, a few malformed) land in HDFS under ``/raw/events``,
   as an upstream system would leave them.
2. **A Spark job** (PySpark from PyPI, ``local[2]`` on the JDK, Spark's bundled Hadoop
   client speaking to our HDFS) parses and filters them and writes a training set into
   ``/datasets/ctr``: Parquet partitioned by ``day``, and TFRecord shards of
   ``tf.train.Example``.  The TFRecord shards are written by **TensorFlow's own
   writer** (``tf.io.TFRecordWriter``) inside the Spark tasks, and committed into HDFS
   by the driver through Hadoop's ``FileSystem``: Spark's TFRecord data source
   (``com.linkedin.sparktfrecord:spark-tfrecord_2.13``) is not served by the Maven
   registry this project can reach, and its newest release targets Spark 3.5, not the
   Spark 4 of the PyPI wheel.  The tasks spool their shard on local disk, which is
   right for ``local[N]`` (and a cluster with shared scratch), not for executors on
   other machines.  The job re-reads its Parquet output, checksums it in its own
   Python workers, and writes ``_pipeline.json`` (rows and checksums) beside the data.
3. **A snapshot** of the output directory is taken right after the job; its name
   (``spark-<application id>``) is the dataset version.  Then the producer moves on
   (a shard deleted, a file added in the live directory), to show that the readers do
   not see it.
4. **The CSI driver** stages the snapshot as a static ``ReadOnlyMany`` volume (FUSE)
   and publishes it into two "pods".
5. **Readers**: ``pyarrow.dataset`` over the mount; a **PyTorch job** (a DataLoader
   with two worker processes over the Parquet files) and a **TensorFlow job**
   (``tf.data.TFRecordDataset`` over the shards), each a separate process that sees
   only its mount, trains one epoch of a small model and reports what it read.
6. **Agreement**: every reader's row count and per-column checksums equal Spark's, and
   every file the jobs read hashes (SHA-256) to the bytes HDFS holds in the snapshot.

The checksum of a column is the sum, modulo 2^64, over rows of an 8-byte BLAKE2b of
(column, row id, value in canonical bytes): independent of row order, file layout and
format (Parquet's ``int32`` label and TFRecord's ``int64`` are the same value), yet any
changed byte of any value changes it.

Used by ``tests/pipeline`` and by ``hdfs-csi demo --pipeline``; ``python -m
hdfs_csi.pipeline`` has the pieces that run in their own processes (the Spark job, the
two training jobs), ``bench`` (the ``spark`` section of BENCHMARKS.md) and
``check-installed``.  Spark, TensorFlow and PyTorch are imported inside functions
only: ``scripts/setup-pipeline.sh`` installs them, for this tier alone.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import posixpath
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

RAW_DIR = "/raw/events"
OUT_DIR = "/datasets/ctr"
PARQUET = "parquet"
TFRECORD = "tfrecord"
MANIFEST = "_pipeline.json"
FEATURES = 16
DAYS = 4
EPOCH_DAY = "2026-11-01"        #: day 0 of the raw events
COLUMNS = ("id", "user", "features", "label", "day")
MASK = (1 << 64) - 1
TFRECORD_WRITER = ("TensorFlow tf.io.TFRecordWriter in the Spark tasks, committed by the "
                   "driver through Hadoop FileSystem (spark-tfrecord is not on the Maven "
                   "registry reachable here, and targets Spark 3.5)")

Progress = Callable[[str], None]


class PipelineError(Exception):
    """A stage failed or a reader disagreed with Spark; the message says which and why."""


def _quiet(_msg: str) -> None:
    pass


# -- what is installed ---------------------------------------------------------------------

def software_missing(need: Sequence[str] = ("pyspark", "tensorflow", "torch")) -> str | None:
    """What of the tier's software is not installed (None: all of it is)."""
    import importlib.util

    missing = [m for m in need if importlib.util.find_spec(m) is None]
    if missing:
        return f"{', '.join(missing)} not installed: run scripts/setup-pipeline.sh"
    if shutil.which("java") is None:
        return "`java` not found: Spark needs a JDK 17 (apt-get install openjdk-17-jdk-headless)"
    return None


def pipeline_unavailable(need: Sequence[str] = ("pyspark", "tensorflow", "torch")) -> str | None:
    """Why this tier cannot run here (a skip reason), or None: software, FUSE, root."""
    reason = software_missing(need)
    if reason:
        return reason
    from fuse_mount import mounts

    reason = mounts.fuse_unavailable_reason()
    if reason:
        return reason
    if os.geteuid() != 0:
        return "publishing a volume is a bind mount, which needs root"
    return None


def installed_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("pyspark", "tensorflow-cpu", "torch", "pyarrow"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


# -- checksums ---------------------------------------------------------------------------

def _i64(values: Any) -> Any:
    import numpy as np

    return np.ascontiguousarray(np.asarray(values, dtype=np.int64), dtype="<i8")


@dataclass
class Checksum:
    """Rows and one order-independent digest per column (see the module docstring)."""

    rows: int = 0
    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))

    def add(self, ids: Any, users: Sequence[str | bytes], features: Any, labels: Any,
            days: Any) -> None:
        """One batch: ids/labels/days integer arrays, features an (n, FEATURES) array."""
        import numpy as np

        ids_b = _i64(ids).tobytes()
        n = len(ids_b) // 8
        feats = np.ascontiguousarray(np.asarray(features, dtype=np.float32), dtype="<f4")
        if feats.shape != (n, FEATURES):
            raise PipelineError(f"features have shape {feats.shape}, expected ({n}, {FEATURES})")
        if len(users) != n:
            raise PipelineError(f"{len(users)} users for {n} ids")
        feats_b, labels_b, days_b = feats.tobytes(), _i64(labels).tobytes(), _i64(days).tobytes()
        if len(labels_b) != 8 * n or len(days_b) != 8 * n:
            raise PipelineError("columns of different lengths in one batch")
        fw = 4 * FEATURES
        sums = self.sums
        blake = hashlib.blake2b
        for i in range(n):
            rid = ids_b[8 * i:8 * i + 8]
            user = users[i]
            ub = user.encode() if isinstance(user, str) else bytes(user)
            for col, value in (("id", b""), ("user", ub),
                               ("features", feats_b[fw * i:fw * i + fw]),
                               ("label", labels_b[8 * i:8 * i + 8]),
                               ("day", days_b[8 * i:8 * i + 8])):
                d = blake(col.encode() + b"\0" + rid + value, digest_size=8).digest()
                sums[col] = (sums[col] + int.from_bytes(d, "little")) & MASK
        self.rows += n

    def add_arrow(self, data: Any) -> None:
        """A pyarrow Table or RecordBatch with the training-set columns."""
        self.add(*arrow_columns(data))

    def merge(self, other: Checksum) -> Checksum:
        self.rows += other.rows
        for col in COLUMNS:
            self.sums[col] = (self.sums[col] + other.sums[col]) & MASK
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": {c: f"{self.sums[c]:016x}" for c in COLUMNS}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Checksum:
        return cls(int(d["rows"]), {c: int(d["columns"][c], 16) for c in COLUMNS})

    def differences(self, other: Checksum) -> list[str]:
        """What differs, in words (empty when the two agree)."""
        out = [] if self.rows == other.rows else [f"rows {self.rows} != {other.rows}"]
        return out + [f"column {c}" for c in COLUMNS if self.sums[c] != other.sums[c]]


def arrow_columns(data: Any) -> tuple[Any, list[Any], Any, Any, Any]:
    """(ids, users, features (n, F), labels, days) from a pyarrow Table or RecordBatch."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def col(name: str) -> Any:
        c = data.column(name)
        if isinstance(c, pa.ChunkedArray):
            c = c.combine_chunks()
        if pa.types.is_dictionary(c.type):  # a Hive partition column may come as one
            c = c.dictionary_decode()
        return c

    feats = col("features")
    n = len(feats)
    if n and (feats.null_count or pc.min(pc.list_value_length(feats)).as_py() != FEATURES
              or pc.max(pc.list_value_length(feats)).as_py() != FEATURES):
        raise PipelineError(f"a features list is null or not {FEATURES} long")
    flat = np.asarray(pc.list_flatten(feats).to_numpy(zero_copy_only=False), dtype=np.float32)
    return (col("id").to_numpy(), col("user").to_pylist(), flat.reshape(n, FEATURES),
            pc.cast(col("label"), pa.int64()).to_numpy(),
            pc.cast(col("day"), pa.int64()).to_numpy())


# -- stage 1: raw records ----------------------------------------------------------------------

@dataclass
class RawInput:
    records: int
    valid: int      #: records a correct job keeps
    nbytes: int
    files: int


def weights(seed: int = 7) -> list[float]:
    """The hidden linear rule the labels follow (so one epoch has something to learn)."""
    rng = random.Random(seed)
    return [rng.uniform(-2, 2) for _ in range(FEATURES)]


def write_raw_records(client: Any, rows: int, *, files: int = 4, seed: int = 42,
                      raw_dir: str = RAW_DIR) -> RawInput:
    """Seeded JSON-lines click events; about 3% malformed (no or a short ``values``)."""
    import math

    rng = random.Random(seed)
    w = weights()
    client.mkdirs(raw_dir)
    valid = nbytes = 0
    per_file = -(-rows // files)
    for f in range(files):
        lines = []
        for i in range(f * per_file, min(rows, (f + 1) * per_file)):
            x = [round(rng.uniform(-1, 1), 6) for _ in range(FEATURES)]
            p = 1 / (1 + math.exp(-3 * sum(a * b for a, b in zip(x, w, strict=False))))
            rec: dict[str, Any] = {
                "event_id": i, "user": f"u{rng.randrange(5000):05d}",
                "ts": f"2026-11-{1 + rng.randrange(DAYS):02d}T{rng.randrange(24):02d}:"
                      f"{rng.randrange(60):02d}:{rng.randrange(60):02d}",
                "values": ",".join(f"{v:.6f}" for v in x), "clicked": rng.random() < p}
            bad = rng.random()
            if bad < 0.015:
                rec["values"] = None
            elif bad < 0.03:
                rec["values"] = ",".join(rec["values"].split(",")[1:])
            else:
                valid += 1
            lines.append(json.dumps(rec, separators=(",", ":")))
        data = ("\n".join(lines) + "\n").encode()
        client.write_file(f"{raw_dir}/events-{f:03d}.jsonl", data)
        nbytes += len(data)
    return RawInput(rows, valid, nbytes, files)


# -- stage 2: the Spark job (runs in its own process: python -m hdfs_csi.pipeline spark-job) ----

RAW_SCHEMA = "event_id LONG, user STRING, ts STRING, values STRING, clicked BOOLEAN"


def rows_columns(rows: Sequence[Any]) -> tuple[Any, list[Any], Any, Any, Any]:
    """(ids, users, features (n, F), labels, days) from Spark ``Row`` objects."""
    import numpy as np

    feats = np.array([r.features for r in rows], dtype=np.float32).reshape(len(rows), FEATURES)
    return (np.array([r.id for r in rows], dtype=np.int64), [r.user for r in rows], feats,
            np.array([r.label for r in rows], dtype=np.int64),
            np.array([r.day for r in rows], dtype=np.int64))


def _checksum_partition(_index: int, rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """mapPartitionsWithIndex body (Spark's Python workers): one checksum per partition.
    The RDD API, not mapInArrow, which would need pandas in the workers."""
    cs = Checksum()
    batch = list(rows)
    if batch:
        cs.add(*rows_columns(batch))
    yield cs.to_dict()


def example_bytes(tf: Any, rid: int, user: bytes, feats: Any, label: int, day: int) -> bytes:
    """One row as a serialized ``tf.train.Example``."""
    train = tf.train
    return train.Example(features=train.Features(feature={
        "id": train.Feature(int64_list=train.Int64List(value=[rid])),
        "user": train.Feature(bytes_list=train.BytesList(value=[user])),
        "features": train.Feature(float_list=train.FloatList(value=feats)),
        "label": train.Feature(int64_list=train.Int64List(value=[label])),
        "day": train.Feature(int64_list=train.Int64List(value=[day])),
    })).SerializeToString()


def _write_tfrecord_shard(spool: str, index: int, rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """mapPartitionsWithIndex body: this partition's rows as one TFRecord shard, with
    TensorFlow's writer, on local disk; yields where, and the rows' checksum."""
    import tensorflow as tf

    path = os.path.join(spool, f"part-{index:05d}.tfrecord")
    batch = list(rows)
    cs = Checksum()
    with tf.io.TFRecordWriter(path) as writer:
        if batch:
            ids, users, feats, labels, days = rows_columns(batch)
            cs.add(ids, users, feats, labels, days)
            for i in range(len(ids)):
                writer.write(example_bytes(tf, int(ids[i]), users[i].encode(), feats[i].tolist(),
                                           int(labels[i]), int(days[i])))
    yield {"shard": index, "path": path, "checksum": cs.to_dict()}


def spark_session(hdfs_uri: str, app_name: str = "hdfs-csi-pipeline") -> Any:
    """A small local Spark for a 2-core machine, with HDFS as its default file system."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName(app_name)
             .config("spark.driver.memory", "768m")
             .config("spark.driver.extraJavaOptions", "-XX:+UseSerialGC")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.hadoop.fs.defaultFS", hdfs_uri)
             .config("spark.hadoop.dfs.replication", "1")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _hadoop_fs(spark: Any, path: str) -> tuple[Any, Any]:
    jvm = spark._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p.getFileSystem(spark._jsc.hadoopConfiguration()), jvm.org.apache.hadoop.fs.Path


def spark_job(hdfs_uri: str, spool: str, *, raw_dir: str = RAW_DIR, out_dir: str = OUT_DIR,
              shards: int = 4, parquet_tasks: int = 4) -> dict[str, Any]:
    """The job: raw JSON -> training set (Parquet by day + TFRecord shards) + manifest."""
    from pyspark.sql import functions as F

    timings: dict[str, float] = {}
    t = time.perf_counter()
    spark = spark_session(hdfs_uri)
    try:
        timings["session"] = time.perf_counter() - t
        t = time.perf_counter()
        raw = spark.read.schema(RAW_SCHEMA).json(raw_dir)
        values = F.split(F.col("values"), ",")
        df = (raw.where(F.col("values").isNotNull() & (F.size(values) == FEATURES))
              .select(F.col("event_id").alias("id"), F.col("user"),
                      F.transform(values, lambda v: v.cast("float")).alias("features"),
                      F.col("clicked").cast("int").alias("label"),
                      F.datediff(F.to_date("ts"), F.lit(EPOCH_DAY)).cast("int").alias("day"))
              .persist())
        raw_rows = raw.count()
        rows = df.count()
        timings["read_transform"] = time.perf_counter() - t

        t = time.perf_counter()
        parquet_dir = f"{out_dir}/{PARQUET}"
        df.repartition(parquet_tasks).write.partitionBy("day").parquet(parquet_dir)
        timings["parquet"] = time.perf_counter() - t

        t = time.perf_counter()
        os.makedirs(spool, exist_ok=True)
        import functools

        written = (df.repartition(shards).rdd
                   .mapPartitionsWithIndex(functools.partial(_write_tfrecord_shard, spool))
                   .collect())
        fs, Path = _hadoop_fs(spark, out_dir)
        tf_dir = f"{out_dir}/{TFRECORD}"
        fs.mkdirs(Path(tf_dir))
        tf_sum = Checksum()
        for r in sorted(written, key=lambda r: r["shard"]):
            tf_sum.merge(Checksum.from_dict(r["checksum"]))
            dst = f"{tf_dir}/part-{r['shard']:05d}-of-{shards:05d}.tfrecord"
            fs.copyFromLocalFile(True, True, Path("file://" + r["path"]), Path(dst))
        fs.create(Path(f"{tf_dir}/_SUCCESS"), True).close()
        timings["tfrecord"] = time.perf_counter() - t

        # What Spark wrote, as Spark reads it back (checksummed in its Python workers).
        t = time.perf_counter()
        pq_sum = Checksum()
        for part in (spark.read.parquet(parquet_dir).rdd
                     .mapPartitionsWithIndex(_checksum_partition).collect()):
            pq_sum.merge(Checksum.from_dict(part))
        timings["verify"] = time.perf_counter() - t
        if pq_sum.differences(tf_sum) or pq_sum.rows != rows:
            raise PipelineError(f"Spark's Parquet and TFRecord outputs differ: "
                                f"{pq_sum.differences(tf_sum)}, {rows} rows kept")
        result = {
            "application_id": spark.sparkContext.applicationId,
            "spark_version": spark.version,
            "hadoop_client": spark._jvm.org.apache.hadoop.util.VersionInfo.getVersion(),
            "raw_records": raw_rows, "rows": rows, "shards": shards,
            "checksum": pq_sum.to_dict(), "tfrecord_writer": TFRECORD_WRITER,
            "timings": timings,
        }
        out = fs.create(Path(f"{out_dir}/{MANIFEST}"), False)
        out.write(bytearray(json.dumps(result, indent=1).encode()))
        out.close()
        return result
    finally:
        spark.stop()


# -- stage 5: the readers -------------------------------------------------------------------

def data_files(root: str, kind: str) -> list[str]:
    """The data files under ``root/kind`` (relative to root), as a reader lists them."""
    suffix = ".parquet" if kind == PARQUET else ".tfrecord"
    out = []
    for top, dirs, names in os.walk(os.path.join(root, kind)):
        dirs.sort()
        out += [os.path.relpath(os.path.join(top, n), root) for n in sorted(names)
                if n.endswith(suffix)]
    return out


def _day_of(rel: str) -> int:
    for part in rel.split("/"):
        if part.startswith("day="):
            return int(part[4:])
    raise PipelineError(f"{rel} is not under a day=N directory")


def read_pyarrow_dataset(root: str, filesystem: Any = None) -> tuple[Checksum, Any]:
    """``pyarrow.dataset`` over the Parquet directory (hive partitions); (checksum, table)."""
    import pyarrow.dataset as pads

    ds = pads.dataset(posixpath.join(root, PARQUET), format="parquet", partitioning="hive",
                      filesystem=filesystem)
    table = ds.to_table()
    cs = Checksum()
    cs.add_arrow(table)
    return cs, table


def _parquet_file_sample(opener: Any, rel: str) -> dict[str, Any]:
    """One Parquet file as tensors (what a DataLoader worker returns), with its bytes' hash."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    data = opener.read_file(rel)
    table = pq.read_table(pa.BufferReader(data))
    ids, users, feats, labels, _ = arrow_columns(table.append_column(
        "day", pa.array([_day_of(rel)] * table.num_rows, pa.int32())))
    return {"rel": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "id": torch.from_numpy(np.array(ids, dtype=np.int64)), "user": users,
            "features": torch.from_numpy(np.array(feats)),
            "label": torch.from_numpy(np.array(labels)),
            "day": torch.full((len(ids),), _day_of(rel), dtype=torch.int64)}


class _ParquetFiles:
    """A map-style dataset of whole Parquet files (a file-level shard per item)."""

    def __init__(self, opener: Any, files: list[str]):
        self.opener = opener
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return _parquet_file_sample(self.opener, self.files[i])


def torch_loader(opener: Any, files: list[str], workers: int = 2,
                 mp_context: Any = None) -> Any:
    from torch.utils.data import DataLoader

    return DataLoader(_ParquetFiles(opener, files), batch_size=None, shuffle=True,
                      num_workers=workers, persistent_workers=False,
                      multiprocessing_context=mp_context,
                      timeout=300 if workers else 0)  # a hung worker fails, never hangs


def forkserver_context() -> Any:
    """Worker processes for a parent that holds an HDFS client: a plain fork would copy
    its Rust runtime half-alive (threads gone) and hang the worker's first read.  Started
    and warmed here, so no measured pass pays for importing torch in the server."""
    import multiprocessing
    import multiprocessing.forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "numpy", "pyarrow.parquet", __name__])
    multiprocessing.forkserver.ensure_running()
    p = ctx.Process(target=_quiet, args=("",))
    p.start()
    p.join()
    return ctx


def train_torch(root: str, *, workers: int = 2, batch: int = 256, seed: int = 0) -> dict[str, Any]:
    """The PyTorch job: one epoch of a small MLP over the Parquet files under ``root``."""
    import torch
    from torch import nn

    from benchmarks.targets import FileSystemTarget

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    files = data_files(root, PARQUET)
    if not files:
        raise PipelineError(f"no Parquet files under {root}/{PARQUET}")
    model = nn.Sequential(nn.Linear(FEATURES, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.BCEWithLogitsLoss()
    cs, seen, losses, nbytes = Checksum(), {}, [], 0
    t0 = time.perf_counter()
    for item in torch_loader(FileSystemTarget(root).opener(), files, workers):
        cs.add(item["id"].numpy(), item["user"], item["features"].numpy(),
               item["label"].numpy(), item["day"].numpy())
        seen[item["rel"]] = [item["size"], item["sha256"]]
        nbytes += item["size"]
        x, y = item["features"], item["label"].float().unsqueeze(1)
        for i in range(0, len(x), batch):
            opt.zero_grad()
            loss = loss_fn(model(x[i:i + batch]), y[i:i + batch])
            loss.backward()
            opt.step()
            losses.append(float(loss))
    seconds = time.perf_counter() - t0
    return _job_result("pytorch", f"torch {torch.__version__}", cs, seen, nbytes, seconds,
                       losses)


def _job_result(job: str, framework: str, cs: Checksum, files: dict[str, list[Any]],
                nbytes: int, seconds: float, losses: list[float]) -> dict[str, Any]:
    q = max(1, len(losses) // 4)
    return {"job": job, "framework": framework, "checksum": cs.to_dict(), "files": files,
            "bytes": nbytes, "seconds": seconds, "batches": len(losses),
            "loss_first_quarter": sum(losses[:q]) / q, "loss_last_quarter": sum(losses[-q:]) / q}


def train_tf(root: str, *, batch: int = 256, seed: int = 0) -> dict[str, Any]:
    """The TensorFlow job: one epoch of a small Keras MLP over the TFRecord shards under
    ``root`` (``tf.data``), then a SHA-256 of every shard as read through plain files."""
    import tensorflow as tf

    tf.random.set_seed(seed)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    files = data_files(root, TFRECORD)
    if not files:
        raise PipelineError(f"no TFRecord shards under {root}/{TFRECORD}")
    spec = {"id": tf.io.FixedLenFeature([], tf.int64),
            "user": tf.io.FixedLenFeature([], tf.string),
            "features": tf.io.FixedLenFeature([FEATURES], tf.float32),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "day": tf.io.FixedLenFeature([], tf.int64)}
    ds = (tf.data.TFRecordDataset([os.path.join(root, f) for f in files], num_parallel_reads=2)
          .batch(batch).map(lambda rec: tf.io.parse_example(rec, spec)).prefetch(2))
    model = tf.keras.Sequential([tf.keras.Input((FEATURES,)),
                                 tf.keras.layers.Dense(32, activation="relu"),
                                 tf.keras.layers.Dense(1)])
    opt = tf.keras.optimizers.Adam(0.01)
    bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function
    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = bce(y, model(x, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                model.trainable_variables, strict=True))
        return loss

    cs, losses = Checksum(), []
    t0 = time.perf_counter()
    for b in ds:
        cs.add(b["id"].numpy(), list(b["user"].numpy()), b["features"].numpy(),
               b["label"].numpy(), b["day"].numpy())
        losses.append(float(step(b["features"], tf.cast(b["label"], tf.float32)[:, None])))
    seconds = time.perf_counter() - t0
    seen, nbytes = {}, 0
    for rel in files:  # the shard bytes as the job's file system shows them
        with open(os.path.join(root, rel), "rb") as fh:
            data = fh.read()
        seen[rel] = [len(data), hashlib.sha256(data).hexdigest()]
        nbytes += len(data)
    return _job_result("tensorflow", f"tensorflow {tf.__version__}", cs, seen, nbytes, seconds,
                       losses)


# -- orchestration ----------------------------------------------------------------------------

@dataclass
class Stage:
    name: str
    seconds: float
    rows: int = 0
    nbytes: int = 0
    note: str = ""

    def rate(self) -> str:
        if not self.rows or self.seconds <= 0:
            return ""
        mbs = self.nbytes / self.seconds / 1e6
        mb = f", {mbs:.{1 if mbs >= 10 else 2}f} MB/s" if self.nbytes else ""
        return f"{self.rows / self.seconds:,.0f} rows/s{mb}"


@dataclass
class Report:
    backend: str
    hdfs_uri: str
    snapshot: str = ""
    spark: dict[str, Any] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    #: reader name -> list of disagreements with Spark (empty = exact agreement)
    agreement: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    bench: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        w = max(len(s.name) for s in self.stages)
        lines = [f"{'stage':<{w}}  {'time':>7}  {'rows':>8}  {'bytes':>9}  throughput"]
        for s in self.stages:
            size = _size(s.nbytes) if s.nbytes else ""
            rows = f"{s.rows:,}" if s.rows else ""
            lines.append(f"{s.name:<{w}}  {s.seconds:6.1f}s  {rows:>8}  {size:>9}  {s.rate()}"
                         + (f"  ({s.note})" if s.note else ""))
        bad = {k: v for k, v in self.agreement.items() if v}
        if bad:
            lines.append(f"agreement with Spark: FAILED: {bad}")
        else:
            lines.append("agreement with Spark: exact (row count and every column's checksum) "
                         f"for {', '.join(self.agreement)}; every file the jobs read has the "
                         "snapshot's SHA-256")
        return "\n".join(lines)


def _size(n: int) -> str:
    from hdfs_csi_common.units import format_size

    return format_size(n)


def _subprocess_env() -> dict[str, str]:
    from minidfs.process import clean_env

    env = clean_env()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    env.update({"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
                "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
                "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    return env


def run_module(command: list[str], log_path: str, result_path: str,
               timeout: float = 900.0) -> dict[str, Any]:
    """``python -m hdfs_csi.pipeline COMMAND --result FILE`` in its own process (a pod's
    or a spark-submit's worth of isolation); its JSON result, or PipelineError with the
    log's tail."""
    cmd = [sys.executable, "-m", "hdfs_csi.pipeline", *command, "--result", result_path]
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, env=_subprocess_env(),
                                  timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise PipelineError(f"{command[0]} did not finish in {timeout:.0f} s:\n"
                                f"{_tail(log_path)}") from None
    if proc.returncode != 0:
        raise PipelineError(f"{command[0]} exited with status {proc.returncode}:\n"
                            f"{_tail(log_path)}")
    with open(result_path, encoding="utf-8") as fh:
        return dict(json.load(fh))


def _tail(path: str, lines: int = 30) -> str:
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as fh:
        return "".join(fh.readlines()[-lines:])
    return ""


def hdfs_file_digests(client: Any, root: str) -> dict[str, list[Any]]:
    """(size, SHA-256) of every data file under ``root`` (an HDFS path), read directly."""
    out: dict[str, list[Any]] = {}

    def walk(path: str) -> None:
        for st in client.list_dir(path):
            if st.is_dir:
                walk(st.path)
            elif st.name.endswith((".parquet", ".tfrecord")):
                data = client.read_file(st.path)
                out[posixpath.relpath(st.path, root)] = [len(data),
                                                         hashlib.sha256(data).hexdigest()]

    walk(root)
    return out


class Volume:
    """One static ROX volume over the snapshot, staged once and published per "pod"."""

    def __init__(self, csi: Any, kubelet: str, volume_id: str, context: dict[str, str]):
        self.csi, self.kubelet, self.volume_id, self.context = csi, kubelet, volume_id, context
        self.staging = os.path.join(kubelet, "plugins", "staging", volume_id)
        self.targets: list[str] = []
        self.cap = csi.capability("rox")

    def stage(self) -> None:
        pb = self.csi.pb
        os.makedirs(self.staging, exist_ok=True)
        self.csi.node.NodeStageVolume(pb.NodeStageVolumeRequest(
            volume_id=self.volume_id, staging_target_path=self.staging,
            volume_capability=self.cap, volume_context=self.context))

    def publish(self, pod: str) -> str:
        pb = self.csi.pb
        target = os.path.join(self.kubelet, "pods", pod, "volumes", self.volume_id, "mount")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.csi.node.NodePublishVolume(pb.NodePublishVolumeRequest(
            volume_id=self.volume_id, staging_target_path=self.staging, target_path=target,
            volume_capability=self.cap, readonly=True, volume_context=self.context))
        self.targets.append(target)
        return target

    def teardown(self) -> None:
        pb = self.csi.pb
        while self.targets:
            self.csi.node.NodeUnpublishVolume(pb.NodeUnpublishVolumeRequest(
                volume_id=self.volume_id, target_path=self.targets.pop()))
        self.csi.node.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(
            volume_id=self.volume_id, staging_target_path=self.staging))


def run_pipeline(hdfs_uri: str, workdir: str, *, backend: str = "minidfs", rows: int = 8000,
                 shards: int = 4, progress: Progress = _quiet, bench: bool = False,
                 keep_snapshot: bool = False,
                 while_mounted: Callable[[dict[str, str]], None] | None = None) -> Report:
    """The whole flow against a running HDFS at ``hdfs_uri``; every step is undone at the
    end (mounts, driver, snapshot) except the data in HDFS.  Raises PipelineError when a
    stage fails or a reader disagrees with Spark; the report says what each stage took.
    ``while_mounted({"pytorch": path, "tensorflow": path})`` runs after the readers, with
    the two pods' mounts still published (tests run more readers there)."""
    from hdfs_client import connect
    from hdfs_client.admin_rpc import AdminRpcClient
    from hdfs_csi.demo_harness import Csi, Teardown, start_driver

    os.makedirs(workdir, exist_ok=True)
    report = Report(backend, hdfs_uri)
    teardown = Teardown()
    client = connect(hdfs_uri)
    teardown.push("close the HDFS client", client.close)
    admin = AdminRpcClient(hdfs_uri)
    teardown.push("close the admin client", admin.close)
    try:
        _run(report, client, admin, hdfs_uri, workdir, rows, shards, progress, teardown,
             bench, keep_snapshot, start_driver, Csi, while_mounted)
    finally:
        teardown.run()
        from fuse_mount.mounts import unmount_under

        left, still = unmount_under(workdir)
        if teardown.failures or still:
            raise PipelineError(f"teardown: {teardown.failures}; still mounted: {still}")
    return report


def _timed(report: Report, name: str, fn: Callable[[], Any], **kw: Any) -> Any:
    t0 = time.perf_counter()
    value = fn()
    report.stages.append(Stage(name, time.perf_counter() - t0, **kw))
    return value


def _run(report: Report, client: Any, admin: Any, hdfs_uri: str, workdir: str, rows: int,
         shards: int, progress: Progress, teardown: Any, bench: bool, keep_snapshot: bool,
         start_driver: Any, csi_cls: Any,
         while_mounted: Callable[[dict[str, str]], None] | None) -> None:
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    for path in (RAW_DIR, OUT_DIR):
        if client.exists(path):
            raise PipelineError(f"{hdfs_uri}{path} exists already: the pipeline writes a fresh "
                                "data set (delete it, or use a fresh cluster)")

    progress(f"[1/6] raw records: {rows:,} JSON-lines click events into {hdfs_uri}{RAW_DIR}")
    raw = _timed(report, "raw records -> HDFS", lambda: write_raw_records(client, rows),
                 rows=rows)
    report.stages[-1].nbytes = raw.nbytes
    progress(f"      {raw.files} files, {_size(raw.nbytes)}; {raw.records - raw.valid} "
             "malformed records for the job to drop")

    progress(f"[2/6] Spark job (local[2]): JSON -> Parquet by day + {shards} TFRecord shards "
             f"in {OUT_DIR}")
    spark = _timed(report, "Spark job", lambda: run_module(
        ["spark-job", "--hdfs-uri", hdfs_uri, "--spool", os.path.join(workdir, "spool"),
         "--shards", str(shards)], os.path.join(logs, "spark-job.log"),
        os.path.join(workdir, "spark-result.json")), rows=raw.valid)
    report.spark = spark
    out_bytes = client.content_summary(OUT_DIR).length
    report.stages[-1].nbytes = out_bytes
    t = spark["timings"]
    report.stages[-1].note = (f"Spark {spark['spark_version']}, Hadoop client "
                              f"{spark['hadoop_client']}; session {t['session']:.1f}s, "
                              f"read+transform {t['read_transform']:.1f}s, Parquet "
                              f"{t['parquet']:.1f}s, TFRecord {t['tfrecord']:.1f}s")
    if spark["rows"] != raw.valid or spark["raw_records"] != raw.records:
        raise PipelineError(f"Spark read {spark['raw_records']} records and kept "
                            f"{spark['rows']}; the input had {raw.records}, {raw.valid} valid")
    progress(f"      {spark['rows']:,} rows kept of {spark['raw_records']:,}; wrote "
             f"{_size(out_bytes)} ({report.stages[-1].note})")

    snapshot = "spark-" + "".join(c if c.isalnum() or c in "-_" else "-"
                                  for c in spark["application_id"])
    report.snapshot = snapshot
    progress(f"[3/6] snapshot {OUT_DIR}@{snapshot}: the dataset version")

    def take_snapshot() -> str:
        admin.allow_snapshot(OUT_DIR)
        return str(admin.create_snapshot(OUT_DIR, snapshot))

    snap_path = _timed(report, "HDFS snapshot", take_snapshot)
    if not keep_snapshot:
        teardown.push("delete the snapshot", lambda: (admin.delete_snapshot(OUT_DIR, snapshot),
                                                      admin.disallow_snapshot(OUT_DIR)))
    # The producer moves on: the live directory changes, the version does not.
    live_shard = f"{OUT_DIR}/{TFRECORD}/part-00000-of-{shards:05d}.tfrecord"
    client.delete(live_shard)
    client.write_file(f"{OUT_DIR}/{PARQUET}/day=0/late-arrival.parquet", b"not parquet")
    reference = hdfs_file_digests(client, snap_path)
    progress(f"      {snap_path}: {len(reference)} data files; then the live directory "
             "changed (a shard deleted, a file added)")

    progress("[4/6] CSI driver: static ROX volume over the snapshot, staged and published "
             "into two pods")
    t0 = time.perf_counter()
    driver, endpoint = start_driver(workdir, hdfs_uri)
    teardown.push("stop the CSI driver", driver.stop)
    csi = csi_cls(endpoint)
    teardown.push("close the gRPC channel", csi.close)
    kubelet = os.path.join(workdir, "kubelet")
    vol = Volume(csi, kubelet, f"spark-ctr-{snapshot}", {"path": OUT_DIR, "snapshot": snapshot})
    vol.stage()
    teardown.push("unpublish and unstage the volume", vol.teardown)
    torch_root = vol.publish("pytorch-job-0")
    tf_root = vol.publish("tf-job-0")
    report.stages.append(Stage("CSI stage + publish", time.perf_counter() - t0))
    progress(f"      PyTorch pod sees {torch_root}\n      TF pod sees      {tf_root}")
    seen = set(data_files(torch_root, PARQUET) + data_files(torch_root, TFRECORD))
    if seen != set(reference):
        raise PipelineError(f"the volume shows other files than the snapshot: "
                            f"{sorted(seen ^ set(reference))[:6]}")
    with open(os.path.join(torch_root, MANIFEST), encoding="utf-8") as fh:
        manifest = json.load(fh)
    expected = Checksum.from_dict(spark["checksum"])
    report.agreement["manifest"] = Checksum.from_dict(manifest["checksum"]).differences(expected)

    if bench:
        report.bench = spark_bench(client, snap_path, csi, kubelet, snapshot, progress)

    progress("[5/6] readers through the mount")
    pq_bytes = sum(v[0] for k, v in reference.items() if k.endswith(".parquet"))
    arrow_sum, _ = _timed(report, "pyarrow.dataset (Parquet)",
                          lambda: read_pyarrow_dataset(torch_root), nbytes=pq_bytes)
    report.stages[-1].rows = arrow_sum.rows
    report.agreement["pyarrow.dataset"] = arrow_sum.differences(expected)
    progress(f"      pyarrow.dataset: {arrow_sum.rows:,} rows, {report.stages[-1].rate()}")
    for job, root, kind in (("pytorch", torch_root, "PyTorch DataLoader epoch (Parquet)"),
                            ("tensorflow", tf_root, "TensorFlow tf.data epoch (TFRecord)")):
        t0 = time.perf_counter()
        res = run_module([f"train-{'torch' if job == 'pytorch' else 'tf'}", "--data", root],
                         os.path.join(logs, f"{job}-job.log"),
                         os.path.join(workdir, f"{job}-result.json"))
        wall = time.perf_counter() - t0
        report.jobs[job] = res
        got = Checksum.from_dict(res["checksum"])
        ext = ".parquet" if job == "pytorch" else ".tfrecord"
        want_files = {k: v for k, v in reference.items() if k.endswith(ext)}
        bad = got.differences(expected)
        bad += [f"file {k}" for k in sorted(set(want_files) | set(res["files"]))
                if res["files"].get(k) != want_files.get(k)]
        report.agreement[job] = bad
        report.stages.append(Stage(kind, res["seconds"], got.rows, res["bytes"],
                                   note=f"{res['framework']}, process {wall:.1f}s, loss "
                                        f"{res['loss_first_quarter']:.3f} -> "
                                        f"{res['loss_last_quarter']:.3f}"))
        progress(f"      {job}: {got.rows:,} rows, {len(res['files'])} files in "
                 f"{res['seconds']:.1f}s ({report.stages[-1].rate()}); loss "
                 f"{res['loss_first_quarter']:.3f} -> {res['loss_last_quarter']:.3f}")
    if while_mounted is not None:
        while_mounted({"pytorch": torch_root, "tensorflow": tf_root})
    progress("[6/6] agreement with Spark")
    progress(report.summary())
    failed = {k: v for k, v in report.agreement.items() if v}
    if failed:
        raise PipelineError(f"readers disagree with Spark: {failed}")


# -- the benchmark (BENCHMARKS.md, section spark) ------------------------------------------------

def spark_bench(client: Any, snap_path: str, csi: Any, kubelet: str, snapshot: str,
                progress: Progress = _quiet) -> dict[str, Any]:
    """Spark's Parquet read by pyarrow.dataset and by a PyTorch DataLoader, in-process over
    the seam (hdfs-native) against through a fresh mount (cold, then warm).  Each mount
    mode gets its own staged volume, so a cold read is cold for both readers."""
    import pyarrow.fs as pafs

    from benchmarks.arrowfs import HdfsArrowHandler
    from benchmarks.targets import DirectTarget, FileSystemTarget

    out: dict[str, Any] = {}
    files_hdfs = [posixpath.relpath(p, snap_path) for p in _hdfs_parquet(client, snap_path)]

    def arrow(fs: Any, root: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        import pyarrow.dataset as pads

        n = pads.dataset(posixpath.join(root, PARQUET), format="parquet", partitioning="hive",
                         filesystem=fs).to_table().num_rows
        return time.perf_counter() - t0, n

    ctx = forkserver_context()

    def loader(opener: Any, files: list[str]) -> tuple[float, int]:
        t0 = time.perf_counter()
        n = sum(len(item["id"]) for item in torch_loader(opener, files, 2, ctx))
        return time.perf_counter() - t0, n

    nbytes = sum(client.get_status(posixpath.join(snap_path, f)).length for f in files_hdfs)
    out["parquet_bytes"], out["files"] = nbytes, len(files_hdfs)
    direct = DirectTarget(client, snap_path)
    out["arrow in-process"] = arrow(pafs.PyFileSystem(HdfsArrowHandler(client)), snap_path)
    out["loader in-process"] = loader(direct.opener(), files_hdfs)
    for reader in ("arrow", "loader"):
        vol = Volume(csi, kubelet, f"bench-{reader}-{snapshot}",
                     {"path": OUT_DIR, "snapshot": snapshot})
        vol.stage()
        try:
            root = vol.publish(f"bench-{reader}")
            files = data_files(root, PARQUET)
            for mode in ("cold", "warm"):
                out[f"{reader} mount-{mode}"] = (arrow(None, root) if reader == "arrow"
                                                 else loader(FileSystemTarget(root).opener(),
                                                             files))
        finally:
            vol.teardown()
    for key in [k for k in out if " " in k]:
        s, n = out[key]
        out[key] = {"seconds": s, "rows": n, "MB/s": nbytes / s / 1e6, "rows/s": n / s}
        progress(f"      bench {key:<18} {nbytes / s / 1e6:8.1f} MB/s {n / s:12,.0f} rows/s")
    return out


def _hdfs_parquet(client: Any, root: str) -> list[str]:
    out = []
    for st in client.list_dir(posixpath.join(root, PARQUET)):
        if st.is_dir:
            out += [f.path for f in client.list_dir(st.path) if f.name.endswith(".parquet")]
    return sorted(out)


def bench_markdown(report: Report) -> str:
    b = report.bench
    lines = [f"Spark {report.spark['spark_version']} wrote {report.spark['rows']:,} rows as "
             f"{b['files']} Parquet files ({_size(b['parquet_bytes'])}); {report.backend}.",
             "", "| reader | in-process MB/s | mount cold MB/s | mount warm MB/s | "
             "cold / in-process | warm / in-process |", "|---|---:|---:|---:|---:|---:|"]
    for reader, name in (("arrow", "pyarrow.dataset"),
                         ("loader", "PyTorch DataLoader (2 workers)")):
        d, c, w = (b[f"{reader} {m}"]["MB/s"] for m in ("in-process", "mount-cold", "mount-warm"))
        lines.append(f"| {name} | {d:.1f} | {c:.1f} | {w:.1f} | {c / d:.2f} | {w / d:.2f} |")
    return "\n".join(lines)


# -- command line -------------------------------------------------------------------------------

def _write_result(path: str | None, result: dict[str, Any]) -> None:
    text = json.dumps(result, indent=1, default=str)
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        print(text)


def standalone(args: argparse.Namespace, progress: Progress = print) -> Report:
    """Start a backend, run the pipeline on it, stop it (the demo and the bench)."""
    from hdfs_backends import backend_unavailable, start_backend

    reason = pipeline_unavailable() or backend_unavailable(args.backend)
    if reason:
        raise PipelineError(reason)
    parent = args.workdir
    if parent:
        os.makedirs(parent, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="hdfs-csi-pipeline-", dir=parent)
    progress(f"starting {args.backend} HDFS (work directory {workdir})")
    t0 = time.perf_counter()
    kw: dict[str, Any] = {"process": True} if args.backend == "minidfs" else {}
    dfs = start_backend(args.backend, os.path.join(workdir, "dfs"), block_size=8 << 20, **kw)
    try:
        progress(f"{args.backend} serving {dfs.uri} (up in {time.perf_counter() - t0:.1f} s)")
        report = run_pipeline(dfs.uri, workdir, backend=args.backend, rows=args.rows,
                              progress=progress, bench=getattr(args, "bench", False))
    finally:
        dfs.stop()
    if not getattr(args, "keep", False):
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def demo_main(args: argparse.Namespace) -> int:
    """``hdfs-csi demo --pipeline``: the whole flow with progress and a summary."""
    import signal

    from hdfs_csi.demo_harness import DemoError, check_prerequisites

    try:
        check_prerequisites(getattr(args, "port", 0), args.backend)
    except DemoError as exc:
        print(f"hdfs-csi demo: error: {exc}", file=sys.stderr)
        return 2
    args.rows = getattr(args, "rows", 8000)
    # SIGTERM becomes KeyboardInterrupt, so every teardown step (finally blocks) runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print("hdfs-csi demo --pipeline: Spark -> HDFS -> snapshot -> CSI volume -> PyTorch and "
          "TensorFlow", flush=True)
    try:
        report = standalone(args, lambda m: print(m, flush=True))
    except KeyboardInterrupt:
        print("\ninterrupted: torn down", flush=True)
        return 130
    except PipelineError as exc:
        print(f"hdfs-csi demo: error: {exc}", file=sys.stderr)
        return 1
    print(f"\ndemo finished: dataset version {report.snapshot} read exactly by every reader; "
          "volumes unpublished and unstaged, snapshot deleted, no mount left behind", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hdfs_csi.pipeline", description=__doc__.split(
        "\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("spark-job", help="the Spark job (raw JSON -> Parquet + TFRecord)")
    s.add_argument("--hdfs-uri", required=True)
    s.add_argument("--spool", required=True, help="local directory for the tasks' shards")
    s.add_argument("--shards", type=int, default=4)
    for name in ("train-torch", "train-tf"):
        t = sub.add_parser(name, help=f"the {name[6:]} training job over a mounted volume")
        t.add_argument("--data", required=True, help="the volume's mount path")
    for name in ("run", "bench"):
        r = sub.add_parser(name, help="the whole pipeline" + (" with the read benchmark"
                                                             if name == "bench" else ""))
        r.add_argument("--backend", choices=("minidfs", "hadoop"), default="minidfs")
        r.add_argument("--rows", type=int, default=8000 if name == "run" else 400_000)
        r.add_argument("--workdir", default=None)
        r.add_argument("--keep", action="store_true")
    sub.add_parser("check-installed", help="what this tier needs, and whether it is here")
    for sp in sub.choices.values():
        sp.add_argument("--result", default=None, help="write the JSON result here")
    args = p.parse_args(argv)
    try:
        if args.cmd == "spark-job":
            _write_result(args.result, spark_job(args.hdfs_uri, args.spool, shards=args.shards))
        elif args.cmd == "train-torch":
            _write_result(args.result, train_torch(args.data))
        elif args.cmd == "train-tf":
            _write_result(args.result, train_tf(args.data))
        elif args.cmd in ("run", "bench"):
            args.bench = args.cmd == "bench"
            report = standalone(args)
            if args.bench:
                print(bench_markdown(report))
            if args.result:
                _write_result(args.result, report.to_dict())
        elif args.cmd == "check-installed":
            reason = software_missing()
            print(", ".join(f"{k} {v}" for k, v in installed_versions().items()))
            if reason:
                print(f"pipeline tier unavailable: {reason}", file=sys.stderr)
                return 1
            print("pipeline tier: ready")
    except PipelineError as exc:
        print(f"pipeline: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
