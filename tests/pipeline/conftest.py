"""The ``pipeline`` tier (issue 18: Spark -> HDFS -> CSI volume -> PyTorch and TensorFlow).

Its marker is registered here as well as in pyproject.toml, so the tests collect
under ``--strict-markers`` either way.  Run the tier after
``scripts/setup-pipeline.sh`` with ``pytest -m pipeline tests/pipeline`` (its tests
are also ``slow``, so neither the default tier nor the real-HDFS tier runs them).
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pipeline: Spark + TensorFlow + PyTorch end to end through the CSI driver "
                   "(needs scripts/setup-pipeline.sh, a JDK, FUSE and root)")
