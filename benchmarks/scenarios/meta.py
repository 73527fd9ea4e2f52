"""``meta``: stat and list wide and deep trees (no data read at all).

What a dataset indexer does before the first epoch (torchvision's
``ImageFolder``, ``os.walk`` + ``getsize``): walk a deep tree listing every
directory, list a wide directory (``ls -l``: names and sizes), then stat every
file of the wide directory one by one.  Each listing and each stat is one
operation; ops/s is the headline, files/s counts entries seen.  Time to first
byte here is the time to the first answered operation.
"""

from __future__ import annotations

import posixpath
import time

from benchmarks.scenarios.base import RunContext, ScenarioResult
from benchmarks.stats import Recorder
from benchmarks.targets import Target

NAME = "meta"
PART = "meta"
DESCRIPTION = "walk a deep tree, list a wide directory, stat each of its files"


def run(target: Target, ctx: RunContext) -> ScenarioResult:
    wide = ctx.rels("meta/wide/")
    deep = ctx.rels("meta/deep/")
    deep_dirs = {posixpath.dirname(r) for r in deep}
    expected_dirs = set()
    for d in deep_dirs:
        while d != "meta":
            expected_dirs.add(d)
            d = posixpath.dirname(d)
    rec = Recorder()
    bar = ctx.progress(f"{NAME} {ctx.mode}", len(expected_dirs) + 1 + len(wide), "op")
    clock = time.perf_counter
    walked_dirs = walked_files = 0
    phase: dict[str, float] = {}

    def op(fn, *args):  # type: ignore[no-untyped-def]
        t0 = clock()
        out = fn(*args)
        t1 = clock()
        rec.latencies_s.append(t1 - t0)
        if not rec.ttfb_s:
            rec.ttfb_s.append(t1 - t0)  # the first answer, before any cache could help
        rec.first_byte(t1)
        rec.ops += 1
        bar.update(1)
        return out

    try:
        rec.start()
        t = clock()
        stack = ["meta/deep"]
        while stack:
            d = stack.pop()
            entries = op(target.listdir, d)
            walked_dirs += 1
            for e in entries:
                if e.is_dir:
                    stack.append(f"{d}/{e.name}")
                else:
                    walked_files += 1
        phase["walk_deep_s"] = clock() - t

        t = clock()
        listing = op(target.listdir, "meta/wide")
        phase["list_wide_s"] = clock() - t

        t = clock()
        for rel in wide:
            op(target.stat, rel)
        phase["stat_wide_s"] = clock() - t
        rec.stop()
    finally:
        bar.close()
    rec.files = walked_files + len(listing) + len(wide)
    if walked_files != len(deep) or len(listing) != len(wide):
        raise RuntimeError(f"saw {walked_files}/{len(deep)} deep files and "
                           f"{len(listing)}/{len(wide)} wide entries")
    rec.extra.update({
        "dirs_walked": walked_dirs,
        "walk_deep_dirs_per_s": walked_dirs / max(phase["walk_deep_s"], 1e-9),
        "list_wide_entries": len(listing),
        "list_wide_ms": phase["list_wide_s"] * 1000,
        "stat_per_s": len(wide) / max(phase["stat_wide_s"], 1e-9),
    })
    return ScenarioResult.ok(NAME, ctx.mode, rec)
