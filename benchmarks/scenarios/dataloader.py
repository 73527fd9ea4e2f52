"""``dataloader``: a real PyTorch ``DataLoader`` over the small-file tree.

A map-style dataset (one file per sample, read whole, a cheap numpy touch of
the bytes instead of JPEG decoding, which would measure the CPU instead of
storage) served by N worker processes with shuffling, as an image-training
job does.  Latency samples are the main loop's wait for each batch; time to
first byte is the wait for the first batch (worker start-up included, as a
job sees it).

With a simulated compute time per batch (``--compute-ms``) the loop sleeps
that long per batch as an accelerator step would, and the scenario reports
*accelerator utilisation*: compute time / wall time, the MLPerf Storage
criterion (a storage system passes at >= 90%).

Workers come from a ``forkserver`` context: a fresh process that never
inherited the parent's HDFS client (a Rust runtime with threads, which a
plain ``fork`` would copy half-alive), with torch preloaded so each worker
starts in milliseconds rather than re-importing torch.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.scenarios.base import RunContext, ScenarioResult, Skipped
from benchmarks.stats import Recorder
from benchmarks.targets import Opener, Target

NAME = "dataloader"
PART = "small"
DESCRIPTION = "PyTorch DataLoader, map-style dataset over the small files, N workers"


class FileBytesDataset:
    """Map-style dataset: sample i is the bytes of file i (no torch import needed here)."""

    def __init__(self, opener: Opener, rels: list[str]):
        self.opener = opener
        self.rels = rels

    def __len__(self) -> int:
        return len(self.rels)

    def __getitem__(self, i: int) -> tuple[int, int]:
        import numpy as np

        data = self.opener.read_file(self.rels[i])
        # touch one byte per page, as a decoder would read them all; cheap
        touched = int(np.frombuffer(data, dtype=np.uint8)[::4096].sum()) if data else 0
        return len(data), touched


def unavailable() -> str | None:
    """None if torch imports, else the reason it does not."""
    try:
        import torch  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip"
        return f"PyTorch is not installed ({type(exc).__name__}: {exc}); pip install torch"
    return None


_ctx: Any = None


def _noop() -> None:
    pass


def _mp_context() -> Any:
    global _ctx
    if _ctx is None:
        import multiprocessing

        import multiprocessing.forkserver

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "numpy", __name__])
        # start it now and wait until its preload is done (importing torch takes a
        # second or more): the first measured pass must not pay for what later
        # passes get for free
        multiprocessing.forkserver.ensure_running()
        p = ctx.Process(target=_noop)
        p.start()
        p.join()
        _ctx = ctx
    return _ctx


def run(target: Target, ctx: RunContext) -> ScenarioResult:
    reason = unavailable()
    if reason:
        raise Skipped(reason)
    import torch
    from torch.utils.data import DataLoader

    opts = ctx.options
    rels = ctx.rels("small/")
    total = sum(ctx.files[r][0] for r in rels)
    dataset = FileBytesDataset(target.opener(), rels)
    gen = torch.Generator()
    gen.manual_seed(opts.seed)
    loader = DataLoader(
        dataset, batch_size=opts.batch_size, shuffle=True, generator=gen,
        num_workers=opts.workers, drop_last=False,
        multiprocessing_context=_mp_context() if opts.workers > 0 else None,
        prefetch_factor=2 if opts.workers > 0 else None,
    )
    rec = Recorder()
    bar = ctx.progress(f"{NAME} {ctx.mode}", len(rels), "img")
    clock = time.perf_counter
    compute_total = 0.0
    batches = 0
    try:
        rec.start()
        t_prev = rec.started_at
        for lengths, _touched in loader:
            t = clock()
            wait = t - t_prev
            rec.latencies_s.append(wait)
            if batches == 0:
                rec.ttfb_s.append(wait)
                rec.first_byte(t)
            batches += 1
            n = int(lengths.sum())
            rec.bytes += n
            rec.files += len(lengths)
            bar.update(len(lengths))
            if opts.compute_s > 0:
                c0 = clock()
                time.sleep(opts.compute_s)  # the accelerator's step, overlapping the workers
                compute_total += clock() - c0
            t_prev = clock()
        rec.stop()
    finally:
        bar.close()
    if rec.bytes != total or rec.files != len(rels):
        raise RuntimeError(f"loaded {rec.files} samples / {rec.bytes} bytes, "
                           f"expected {len(rels)} / {total}")
    rec.ops = batches
    rec.extra.update({
        "batches": batches,
        "workers": opts.workers,
        "batch_size": opts.batch_size,
        "samples_per_s": rec.files / rec.wall_s,
        "compute_ms_per_batch": opts.compute_s * 1000,
        "accel_utilisation": (compute_total / rec.wall_s) if opts.compute_s > 0 else None,
    })
    return ScenarioResult.ok(NAME, ctx.mode, rec)
