"""No test may hang a whole tier: every test gets a time limit, and a hang that even
pytest-timeout cannot end ends the run with every thread's traceback.

A CI run once spent its whole 90-minute budget in one test: a page fault on a
FUSE mapping held this process's GIL while the in-process minidfs that had to
serve the fault waited for it.  pytest-timeout's signal handler is Python code
and needs the GIL, so it never ran.  faulthandler's watchdog is a C thread that
needs no GIL: it prints where every thread stands and exits, so the tier fails
with the name of the test and the next tier still runs.

Limits: a test's own ``@pytest.mark.timeout(N)`` wins; otherwise ``timeout`` in
pyproject.toml for the default tier and ``SLOW_TIMEOUT`` for ``slow`` tests.  The
hard stop comes ``watchdog_grace`` seconds (an ini option) after the test's limit.
"""

from __future__ import annotations

import faulthandler
import os

import pytest

SLOW_TIMEOUT = 3600.0
GRACE = 3.0


def _limit(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    if marker is not None and "timeout" in marker.kwargs:
        return float(marker.kwargs["timeout"])
    if item.get_closest_marker("slow") is not None:
        return SLOW_TIMEOUT
    return float(item.config.getini("timeout") or 0)


_STDERR = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("watchdog_grace", "seconds past a test's timeout before the run is ended "
                  "with every thread's traceback", default="120")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Keep a descriptor of the real stderr: while a test runs, pytest's capture has
    put a temporary file on descriptor 2, and the traceback must reach the log."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=True)
    try:
        config.stash[_STDERR] = os.dup(2)
    finally:
        if capman is not None:
            capman.resume_global_capture()


def pytest_unconfigure(config: pytest.Config) -> None:
    fd = config.stash.get(_STDERR, None)
    if fd is not None:
        os.close(fd)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") is not None \
                and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    limit = _limit(item)
    if limit > 0:
        os.write(item.config.stash[_STDERR], b"")
        grace = float(item.config.getini("watchdog_grace"))
        faulthandler.dump_traceback_later(limit + grace, exit=True,
                                          file=item.config.stash[_STDERR])
    try:
        return (yield)
    finally:
        if limit > 0:
            faulthandler.cancel_dump_traceback_later()
