"""The README's quick-start commands, run exactly as written, in a fresh venv.

The commands are extracted from README.md (the fenced block after each
``<!-- quickstart:NAME -->`` marker), so the README and this test cannot drift
apart.  Only the location of the virtual environment is changed (through the
documented ``HDFS_CSI_VENV`` variable) so that the test starts from nothing.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def readme_command(name: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"<!-- quickstart:{name} -->\s*```(?:sh|bash)\n(.*?)```", text, re.S)
    assert m, f"README.md has no quickstart:{name} block"
    lines = [ln for ln in m.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return "\n".join(lines)


def test_readme_names_both_commands() -> None:
    assert "quickstart.sh" in readme_command("demo")
    assert "scripts/test.sh" in readme_command("test")


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run reads its command from the README; check it finds exactly that block."""
    out = subprocess.run([str(REPO / ".ci" / "run"), "--print"], cwd="/", capture_output=True,
                         text=True, timeout=30, check=True).stdout
    assert out.strip() == readme_command("test")


@pytest.mark.fuse
@pytest.mark.timeout(900)
def test_quickstart_demo_in_fresh_venv(tmp_path: pathlib.Path) -> None:
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        pytest.skip("needs /dev/fuse and fusermount3 (apt-get install fuse3)")
    if os.geteuid() != 0:
        pytest.skip("the demo bind-mounts like kubelet and needs root")
    env = dict(os.environ)
    env["HDFS_CSI_VENV"] = str(tmp_path / "venv")
    env["TMPDIR"] = str(tmp_path)
    env.setdefault("HDFS_CSI_TORCH", "auto")
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "HADOOP_CONF_DIR", "HADOOP_HOME"):
        env.pop(key, None)
    proc = subprocess.run(["bash", "-c", readme_command("demo")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=880)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "every byte verified against HDFS" in out
    assert "writing to the read-only volume is refused" in out
    assert "HDFS has identical bytes" in out
    assert "no mount left behind" in out
    mounts = pathlib.Path("/proc/self/mountinfo").read_text()
    assert str(tmp_path) not in mounts, "the demo left a mount behind"
