"""``tfdata``: the ``seq`` shards read by a real ``tf.data.TFRecordDataset``.

What a TensorFlow input pipeline does with a sharded dataset: a
``TFRecordDataset`` over the shard files with ``num_parallel_reads`` (an
``interleave`` of one reader per file, ``READERS`` files at a time, in
parallel), records batched and prefetched.  TensorFlow's reader checks both
CRCs of every record; so a wrong byte from storage is an error, not a
plausible figure.  Latency samples are the main loop's wait for each batch;
time to first byte is the wait for the first batch.  MB/s counts file bytes
(records plus their framing, which must add up to the shards' sizes).

``direct`` has no TensorFlow in it: TensorFlow cannot open ``hdfs://``
without its JVM-backed plugin (libhdfs), which is exactly what this project
avoids.  The baseline reads the same shards through our HDFS seam, the same
number of files at a time on threads, and splits the records itself with
:class:`benchmarks.tfrecord.RecordSplitter`, checking both CRCs as
TensorFlow does: the most a TensorFlow job could get from this client.

Needs ``tensorflow`` (``tensorflow-cpu`` from PyPI; ``HDFS_CSI_TF=yes
scripts/setup.sh``); without it every mode is reported as skipped.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

from benchmarks.scenarios.base import RunContext, ScenarioResult, Skipped
from benchmarks.stats import Recorder
from benchmarks.targets import FileSystemTarget, Target
from benchmarks.tfrecord import OVERHEAD, RecordSplitter

NAME = "tfdata"
PART = "seq"
DESCRIPTION = "tf.data.TFRecordDataset over the TFRecord shards, parallel interleaved reads"

READERS = 4            #: num_parallel_reads: shards read at once (both tiers have 4)


def unavailable() -> str | None:
    """None if TensorFlow imports, else the reason it does not."""
    # TensorFlow's C++ start-up chatter (oneDNN notes, CPU feature lines) is not ours
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip"
        return (f"TensorFlow is not installed ({type(exc).__name__}: {exc}); "
                "HDFS_CSI_TF=yes scripts/setup.sh installs tensorflow-cpu")
    return None


def run(target: Target, ctx: RunContext) -> ScenarioResult:
    rels = ctx.rels("seq/")
    if not rels:
        raise RuntimeError("no TFRecord shards in the dataset")
    total = sum(ctx.files[r][0] for r in rels)
    readers = min(READERS, len(rels))
    if isinstance(target, FileSystemTarget):  # a mount or local disk: TensorFlow reads it
        reason = unavailable()
        if reason:
            raise Skipped(reason)
        rec = _run_tf([os.path.join(target.root, r) for r in rels], ctx, readers, total)
    else:
        rec = _run_direct(target, rels, ctx, readers, total)
    records, payload = rec.extra["records"], rec.extra["payload_bytes"]
    if rec.files != len(rels) or payload + OVERHEAD * records != total:
        raise RuntimeError(f"read {records} records / {payload} payload bytes from {rec.files} "
                           f"shards: framing does not add up to the shards' {total} bytes")
    rec.bytes = total
    rec.extra.update({
        "readers": readers,
        "batch_size": ctx.options.batch_size,
        "records_per_s": records / rec.wall_s,
        "reader": "tf.data.TFRecordDataset" if isinstance(target, FileSystemTarget) else
                  "HDFS seam + benchmarks.tfrecord.RecordSplitter",
    })
    return ScenarioResult.ok(NAME, ctx.mode, rec)


def _run_tf(paths: list[str], ctx: RunContext, readers: int, total: int) -> Recorder:
    import tensorflow as tf

    opts = ctx.options
    ds = tf.data.TFRecordDataset(paths, buffer_size=opts.block_size,
                                 num_parallel_reads=readers)
    # what a training input pipeline then does: batch, keep a few batches ahead
    ds = ds.batch(opts.batch_size).map(lambda b: (tf.size(b), tf.reduce_sum(tf.strings.length(b))),
                                       num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    rec = Recorder()
    bar = ctx.progress(f"{NAME} {ctx.mode}", total, "B")
    clock = time.perf_counter
    records = payload = batches = 0
    try:
        rec.start()
        it = iter(ds)  # starts the reader threads: part of the measured pass
        t_prev = rec.started_at
        for n, nbytes in it:
            t = clock()
            rec.latencies_s.append(t - t_prev)
            if batches == 0:
                rec.ttfb_s.append(t - t_prev)
                rec.first_byte(t)
            batches += 1
            n_i, b_i = int(n), int(nbytes)
            records += n_i
            payload += b_i
            bar.update(b_i + OVERHEAD * n_i)
            t_prev = clock()
        rec.stop()
    finally:
        bar.close()
    rec.files = len(paths)
    rec.ops = batches
    rec.extra.update({"records": records, "payload_bytes": payload, "batches": batches})
    return rec


_DONE = object()


def _run_direct(target: Target, rels: list[str], ctx: RunContext, readers: int,
                total: int) -> Recorder:
    """``readers`` threads, each a shard at a time, records split and CRC-checked; the
    main loop takes batches of ``batch_size`` records as the training loop would."""
    opts = ctx.options
    todo: queue.Queue[str] = queue.Queue()
    for r in rels:
        todo.put(r)
    out: queue.Queue[Any] = queue.Queue(maxsize=4 * readers * max(1, opts.batch_size))
    errors: list[BaseException] = []
    stop = threading.Event()  # the main loop gave up: readers must not block on a full queue

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def reader() -> None:
        try:
            while True:
                try:
                    rel = todo.get_nowait()
                except queue.Empty:
                    return
                sp = RecordSplitter()
                with target.open(rel) as h:
                    while True:
                        b = h.read(opts.block_size)
                        if not b:
                            break
                        for record in sp.feed(b):
                            put(record)
                        if stop.is_set():
                            return
                sp.finish()
        except BaseException as exc:  # noqa: BLE001 - handed to the main loop
            errors.append(exc)
        finally:
            put(_DONE)

    rec = Recorder()
    bar = ctx.progress(f"{NAME} {ctx.mode}", total, "B")
    clock = time.perf_counter
    records = payload = batches = 0
    threads = [threading.Thread(target=reader, name=f"tfdata-direct-{i}", daemon=True)
               for i in range(readers)]
    try:
        rec.start()
        for t in threads:
            t.start()
        live = readers
        batch: list[bytes] = []
        t_prev = rec.started_at

        def take(batch: list[bytes]) -> None:
            nonlocal batches, records, payload, t_prev
            t = clock()
            rec.latencies_s.append(t - t_prev)
            if batches == 0:
                rec.ttfb_s.append(t - t_prev)
                rec.first_byte(t)
            batches += 1
            n_b = sum(len(x) for x in batch)
            records += len(batch)
            payload += n_b
            bar.update(n_b + OVERHEAD * len(batch))
            t_prev = clock()

        while live:
            item = out.get()
            if item is _DONE:
                live -= 1
                continue
            batch.append(item)
            if len(batch) == opts.batch_size:
                take(batch)
                batch = []
        if batch:
            take(batch)
        rec.stop()
    finally:
        bar.close()
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join(timeout=30)
    if errors:
        raise errors[0]
    rec.files = len(rels)
    rec.ops = batches
    rec.extra.update({"records": records, "payload_bytes": payload, "batches": batches})
    return rec
