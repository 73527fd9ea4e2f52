"""``small``: an ImageNet-like tree of ~110 KB files read whole, in shuffled order.

The access pattern of an image-classification epoch: every file once, in a
random order, each opened, read completely and closed.  One stream, so the
figure is per-reader cost (open + read + close); the ``dataloader`` scenario
adds worker parallelism.  Latency samples are whole files; time to first
byte is from ``open`` to the first bytes of each file.
"""

from __future__ import annotations

import time

from benchmarks.scenarios.base import RunContext, ScenarioResult
from benchmarks.stats import Recorder
from benchmarks.targets import Target

NAME = "small"
PART = "small"
DESCRIPTION = "ImageNet-like ~110 KB files read whole, shuffled order, one stream"


def run(target: Target, ctx: RunContext) -> ScenarioResult:
    rels = ctx.shuffled(ctx.rels("small/"))
    total = sum(ctx.files[r][0] for r in rels)
    block = ctx.options.block_size
    rec = Recorder()
    bar = ctx.progress(f"{NAME} {ctx.mode}", len(rels), "file")
    clock = time.perf_counter
    try:
        rec.start()
        for rel in rels:
            t_open = clock()
            n = 0
            with target.open(rel) as h:
                while True:
                    b = h.read(block)
                    if not b:
                        break
                    if n == 0:
                        t1 = clock()
                        rec.ttfb_s.append(t1 - t_open)
                        rec.first_byte(t1)
                    n += len(b)
            rec.latencies_s.append(clock() - t_open)
            rec.bytes += n
            rec.files += 1
            rec.ops += 1
            bar.update(1)
        rec.stop()
    finally:
        bar.close()
    if rec.bytes != total:
        raise RuntimeError(f"read {rec.bytes} bytes, expected {total}: "
                           "short read through the target")
    return ScenarioResult.ok(NAME, ctx.mode, rec)
