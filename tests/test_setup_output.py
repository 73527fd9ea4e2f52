"""Set-up says what it did and nothing alarming when it worked (scripts/pip-install.sh).

pip cannot be made to print a resolver ERROR and then succeed on demand, nor
to fail once and then work, so these runs use a stand-in for the venv's
python that does exactly that; the shell function under test is the real one.
"""

from __future__ import annotations

import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def _run(tmp_path: pathlib.Path, behaviour: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "python"
    count = tmp_path / "count"
    fake.write_text(f"""#!/usr/bin/env bash
n=$(( $(cat {count} 2>/dev/null || echo 0) + 1 )); echo $n > {count}
echo "WARNING: Retrying (Retry(total=4)) after connection broken by the mirror"
echo "ERROR: Could not find a version that satisfies the requirement filelock==3.20.1" >&2
{behaviour}
""")
    fake.chmod(0o755)
    return subprocess.run(
        ["bash", "-c", f'set -euo pipefail; PY={fake}; . scripts/pip-install.sh; '
                       'pip_install torch; echo "after: $?"'],
        cwd=REPO, capture_output=True, text=True, timeout=60)


def test_a_working_install_prints_nothing(tmp_path: pathlib.Path) -> None:
    done = _run(tmp_path, "exit 0")
    assert done.returncode == 0
    assert done.stdout == "after: 0\n" and done.stderr == ""


def test_one_failure_is_retried_calmly(tmp_path: pathlib.Path) -> None:
    done = _run(tmp_path, '[ "$n" -ge 2 ]')
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr and "trying once more" in done.stderr


@pytest.mark.parametrize("where", ["setup.sh", "setup-pipeline.sh"])
def test_set_up_installs_only_through_it(where: str) -> None:
    text = (REPO / "scripts" / where).read_text()
    assert ". scripts/pip-install.sh" in text
    assert "pip install" not in text.replace("pip_install", ""), \
        f"scripts/{where} calls pip directly; use pip_install"


def test_a_real_failure_shows_the_end_of_pips_output(tmp_path: pathlib.Path) -> None:
    done = _run(tmp_path, "exit 1")
    assert done.returncode != 0 and "after:" not in done.stdout
    assert "failed; the end of its output" in done.stderr
    assert "Could not find a version" in done.stderr
