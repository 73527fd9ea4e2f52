"""Types shared by every scenario: what it is given and what it hands back."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from benchmarks.stats import Metrics, Recorder, summarize


class Bar(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def close(self) -> None: ...


#: makes a progress bar: (description, total, unit) -> Bar
ProgressFactory = Callable[[str, int, str], Bar]


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(desc: str, total: int, unit: str) -> Bar:
    return _NullBar()


@dataclass(frozen=True)
class ScenarioOptions:
    """Knobs of the scenarios (all recorded in the JSON so a run can be repeated)."""

    block_size: int = 1 << 20          #: read() size for sequential reads
    seed: int = 42                      #: shuffle order of `small` and `dataloader`
    workers: int = 2                    #: DataLoader worker processes
    batch_size: int = 32                #: DataLoader batch size (ResNet-50 per-GPU typical)
    compute_s: float = 0.0              #: simulated accelerator time per batch
    parquet_batch_rows: int = 4096      #: rows per record batch of the dataset scan


@dataclass
class RunContext:
    mode: str
    files: dict[str, list[Any]]         #: the part's manifest entry: {rel: [size, crc]}
    options: ScenarioOptions
    progress: ProgressFactory = no_progress

    def rels(self, prefix: str = "") -> list[str]:
        return sorted(r for r in self.files if r.startswith(prefix))

    def shuffled(self, rels: list[str]) -> list[str]:
        out = list(rels)
        random.Random(self.options.seed).shuffle(out)
        return out


class Skipped(Exception):
    """Raised by a scenario that cannot run here; the message is the reason shown."""


@dataclass
class ScenarioResult:
    scenario: str
    mode: str
    status: str                         #: "ok", "skipped" or "error"
    reason: str | None = None
    metrics: Metrics | None = None
    target: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, scenario: str, mode: str, rec: Recorder) -> "ScenarioResult":
        return cls(scenario, mode, "ok", metrics=summarize(rec))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"scenario": self.scenario, "mode": self.mode, "status": self.status,
                             "reason": self.reason, "target": self.target}
        d["metrics"] = self.metrics.to_dict() if self.metrics else None
        if self.notes:
            d["notes"] = self.notes
        return d
