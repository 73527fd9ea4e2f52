"""A passing test leaves nothing in pytest's temporary directory; a failing one keeps it."""

from __future__ import annotations

import pathlib

import pytest

TESTS = pathlib.Path(__file__).resolve().parent


def test_passing_tests_leave_no_temporary_files(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makepyfile(test_inner='''
        import pytest

        @pytest.fixture
        def writes_at_teardown(tmp_path):
            yield
            (tmp_path / "image").write_bytes(b"x" * 4096)   # like a cluster stopped late

        def test_passes(tmp_path, writes_at_teardown):
            (tmp_path / "big").write_bytes(b"x" * 100000)

        def test_fails(tmp_path):
            (tmp_path / "evidence").write_text("look here")
            assert False
    ''')
    base = pytester.path / "base"
    result = pytester.runpytest_subprocess("-p", "tmp_kit", f"--basetemp={base}",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    left = sorted(p.name for p in base.iterdir())
    assert not any(name.startswith("test_passes") for name in left), left
    kept = [p for p in base.iterdir() if p.name.startswith("test_fails")]
    assert kept and (kept[0] / "evidence").read_text() == "look here"
