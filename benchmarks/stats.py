"""Turning raw timings into the figures the report shows.

Scenarios only record what happened (bytes, files, per-operation latencies,
time to first byte, wall time); every derived figure is computed here, once,
so "MB/s" or "p99" means the same thing in every scenario and mode.

MB are decimal megabytes (10^6 bytes), the unit storage vendors and the
MLPerf Storage rules use, so numbers compare with published ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

MB = 1_000_000


def percentile(samples: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); None when empty.

    Written out rather than calling numpy so the stats module stays importable
    (and testable) without numpy and its float types never leak into JSON.
    """
    if not samples:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile out of range: {q}")
    xs = sorted(samples)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(xs[lo])
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


@dataclass
class Recorder:
    """Collects what one scenario pass measured; cheap enough for per-read use."""

    bytes: int = 0
    files: int = 0
    ops: int = 0
    latencies_s: list[float] = field(default_factory=list)
    ttfb_s: list[float] = field(default_factory=list)
    first_byte_s: float | None = None  # from the start of the pass to the very first byte
    extra: dict[str, Any] = field(default_factory=dict)
    _t0: float = 0.0
    _t1: float = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        self._t1 = time.perf_counter()

    @property
    def started_at(self) -> float:
        return self._t0

    @property
    def wall_s(self) -> float:
        end = self._t1 or time.perf_counter()
        return max(end - self._t0, 1e-9)

    def first_byte(self, at: float) -> None:
        """Note a first byte seen at perf_counter time ``at`` (only the earliest counts)."""
        if self.first_byte_s is None:
            self.first_byte_s = max(at - self._t0, 0.0)


@dataclass
class Metrics:
    """Every figure of one (scenario, mode) pass, as written to JSON."""

    wall_s: float
    bytes: int
    files: int
    ops: int
    mb_per_s: float | None
    files_per_s: float | None
    ops_per_s: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_mean_ms: float | None
    ttfb_p50_ms: float | None
    ttfb_p99_ms: float | None
    first_byte_ms: float | None
    samples: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "extra"}
        d.update(self.extra)
        return d


def _ms(x: float | None) -> float | None:
    return None if x is None else x * 1000.0


def summarize(rec: Recorder) -> Metrics:
    wall = rec.wall_s
    lat = rec.latencies_s
    return Metrics(
        wall_s=wall,
        bytes=rec.bytes,
        files=rec.files,
        ops=rec.ops,
        mb_per_s=(rec.bytes / MB / wall) if rec.bytes else None,
        files_per_s=(rec.files / wall) if rec.files else None,
        ops_per_s=(rec.ops / wall) if rec.ops else None,
        latency_p50_ms=_ms(percentile(lat, 50)),
        latency_p99_ms=_ms(percentile(lat, 99)),
        latency_mean_ms=_ms(sum(lat) / len(lat)) if lat else None,
        ttfb_p50_ms=_ms(percentile(rec.ttfb_s, 50)),
        ttfb_p99_ms=_ms(percentile(rec.ttfb_s, 99)),
        first_byte_ms=_ms(rec.first_byte_s),
        samples=len(lat),
        extra=dict(rec.extra),
    )


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is zero."""
    if value is None or reference is None or reference <= 0 or not math.isfinite(reference):
        return None
    return value / reference
