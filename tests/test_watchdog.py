"""A hang ends one test, or at worst the run, never the CI budget (tests/watchdog_kit.py)."""

from __future__ import annotations

import pathlib
import time

import pytest

TESTS = pathlib.Path(__file__).resolve().parent

INNER = '''
    import ctypes, signal, pytest

    @pytest.mark.timeout(1)
    def test_hangs_holding_the_gil():
        # what a page fault on a FUSE mapping served from this process does: a C call
        # that keeps the GIL and that SIGALRM does not end
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        ctypes.PyDLL(None).sleep(60)

    @pytest.mark.timeout(1)
    def test_hangs_in_python():
        import time
        time.sleep(60)

    def test_after():
        pass
'''


def test_a_hang_holding_the_gil_ends_the_run_with_tracebacks(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makepyfile(test_inner=INNER)
    t0 = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p", "watchdog_kit", "-p", "no:cacheprovider", "-o", "watchdog_grace=2",
        "-k", "holding", timeout=50)
    assert time.monotonic() - t0 < 30
    assert result.ret != 0
    err = result.stderr.str()
    assert "Timeout" in err and "test_hangs_holding_the_gil" in err, err


def test_an_ordinary_hang_fails_one_test_and_the_run_goes_on(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess(
        "-p", "watchdog_kit", "-p", "no:cacheprovider", "-o", "watchdog_grace=5",
        "-k", "not holding", timeout=50)
    result.assert_outcomes(passed=1, failed=1)
    assert "Timeout (>1.0s) from pytest-timeout" in result.stdout.str()
