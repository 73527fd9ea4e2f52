"""The benchmark scenarios, one module each, all with the same small interface.

A scenario module exposes ``NAME``, ``PART`` (the dataset part it reads,
see :mod:`benchmarks.datasets`), ``DESCRIPTION`` and
``run(target, ctx) -> ScenarioResult``.  It reads only through the
:class:`benchmarks.targets.Target` it is given, so the same code measures
direct HDFS, the FUSE mount and local disk.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from benchmarks.scenarios.base import RunContext, ScenarioOptions, ScenarioResult, Skipped

#: what a plain ``hdfs-csi bench`` runs
NAMES = ("seq", "small", "meta", "dataloader", "parquet")
#: selectable with ``--scenarios`` (``all`` included) but not run by default: they need
#: an optional extra (``tfdata``: TensorFlow, ``HDFS_CSI_TF=yes scripts/setup.sh``)
OPTIONAL = ("tfdata",)
ALL = NAMES + OPTIONAL


def load(name: str) -> ModuleType:
    if name not in ALL:
        raise ValueError(f"unknown scenario {name!r} (choose from {', '.join(ALL)})")
    return importlib.import_module(f"benchmarks.scenarios.{name}")


__all__ = ["ALL", "NAMES", "OPTIONAL", "RunContext", "ScenarioOptions", "ScenarioResult",
           "Skipped", "load"]
