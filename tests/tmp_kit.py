"""Tests clean up what they create: a passing test's ``tmp_path`` goes once its
fixtures are torn down.

pytest keeps the base temporary directory of the last three runs, and one
default-tier run wrote 2.5 GB there (a fresh virtual environment from the
quick-start test, the benchmark's datasets).  A failing test keeps its
directory to look at.  pytest's own ``tmp_path_retention_policy = "failed"``
cannot be used: it deletes a passing test's directory before the teardown of
fixtures set up earlier (a cluster that writes its image there when it stops).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

_TMP = pytest.StashKey[Path]()
_PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.when == "setup":
        funcargs = getattr(item, "funcargs", {})
        if isinstance(funcargs.get("tmp_path"), Path):
            item.stash[_TMP] = funcargs["tmp_path"]
        item.stash[_PASSED] = report.passed
    elif report.when == "call":
        item.stash[_PASSED] = item.stash.get(_PASSED, False) and report.passed
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    result = yield          # the test's own fixtures are torn down by now
    tmp = item.stash.get(_TMP, None)
    if tmp is not None and item.stash.get(_PASSED, False):
        shutil.rmtree(tmp, ignore_errors=True)
    return result
