"""``parquet``: a Parquet dataset scanned with ``pyarrow.dataset`` through the target.

The analytics / tabular-training pattern: footer reads, then column chunks
by random access, on pyarrow's own thread pool.  Mounts and local disk are
read with pyarrow's local filesystem; direct mode hands pyarrow a filesystem
over our HDFS seam (:mod:`benchmarks.arrowfs`).  MB/s counts file bytes
(what storage delivered); rows/s is reported too.  Latency samples are the
waits between record batches; time to first byte is to the first batch.
"""

from __future__ import annotations

import time

from benchmarks.scenarios.base import RunContext, ScenarioResult
from benchmarks.stats import Recorder
from benchmarks.targets import Target

NAME = "parquet"
PART = "parquet"
DESCRIPTION = "pyarrow.dataset scan of a Parquet dataset, all columns"


def run(target: Target, ctx: RunContext) -> ScenarioResult:
    import pyarrow.dataset as pads

    rels = ctx.rels("parquet/")
    total = sum(ctx.files[r][0] for r in rels)
    fs, base = target.arrow_filesystem()
    root = base.rstrip("/")
    paths = [f"{root}/{r}" for r in rels]
    rec = Recorder()
    bar = ctx.progress(f"{NAME} {ctx.mode}", len(rels), "file")
    clock = time.perf_counter
    rows = 0
    try:
        rec.start()
        # an explicit file list, as a training job with a known manifest does;
        # discovery (listing) is what the `meta` scenario measures
        dataset = pads.dataset(paths, format="parquet", filesystem=fs)
        t_prev = clock()
        last_path = None
        for tagged in dataset.scanner(batch_size=ctx.options.parquet_batch_rows,
                                      use_threads=True).scan_batches():
            t = clock()
            rec.latencies_s.append(t - t_prev)
            rec.first_byte(t)
            rows += tagged.record_batch.num_rows
            rec.ops += 1
            t_prev = t
            if tagged.fragment.path != last_path:
                last_path = tagged.fragment.path
                bar.update(1)
        rec.stop()
    finally:
        bar.close()
    if rows == 0:
        raise RuntimeError("the scan returned no rows")
    if rec.first_byte_s is not None:
        rec.ttfb_s.append(rec.first_byte_s)
    rec.bytes = total
    rec.files = len(rels)
    rec.extra["rows"] = rows
    rec.extra["rows_per_s"] = rows / rec.wall_s
    return ScenarioResult.ok(NAME, ctx.mode, rec)
