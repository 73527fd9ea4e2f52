"""``seq``: large shards (TFRecord files) read front to back, one stream.

What tf.data / WebDataset do with sharded datasets: open a shard, read it
sequentially in large blocks, move to the next.  Measures streaming bandwidth
and how well read-ahead hides the per-request round trip.  Latency samples
are individual ``read(block_size)`` calls; time to first byte is from
``open`` to the first block of each shard.
"""

from __future__ import annotations

import time

from benchmarks.scenarios.base import RunContext, ScenarioResult
from benchmarks.stats import Recorder
from benchmarks.targets import Target

NAME = "seq"
PART = "seq"
DESCRIPTION = "large shards read front to back (TFRecord-like), one stream"


def run(target: Target, ctx: RunContext) -> ScenarioResult:
    rels = ctx.rels("seq/")
    total = sum(ctx.files[r][0] for r in rels)
    block = ctx.options.block_size
    rec = Recorder()
    bar = ctx.progress(f"{NAME} {ctx.mode}", total, "B")
    clock = time.perf_counter
    try:
        rec.start()
        for rel in rels:
            t_open = clock()
            with target.open(rel) as h:
                first = True
                while True:
                    t0 = clock()
                    b = h.read(block)
                    t1 = clock()
                    if not b:
                        break
                    if first:
                        rec.ttfb_s.append(t1 - t_open)
                        rec.first_byte(t1)
                        first = False
                    rec.latencies_s.append(t1 - t0)
                    rec.bytes += len(b)
                    rec.ops += 1
                    bar.update(len(b))
            rec.files += 1
        rec.stop()
    finally:
        bar.close()
    _check(rec.bytes, total)
    return ScenarioResult.ok(NAME, ctx.mode, rec)


def _check(got: int, want: int) -> None:
    if got != want:
        raise RuntimeError(f"read {got} bytes, expected {want}: short read through the target")
