"""The Dockerfile and its build context.

No container engine runs here, so the Dockerfile is checked statically (pinned
base, multi-stage, runtime packages, no build tools in the final stage,
non-root user, entrypoint) and its build context is reproduced by applying
``.dockerignore`` with Docker's matching rules; the wheel the builder stage
makes is then built from exactly that context.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from deploy_kit import REPO

pytestmark = pytest.mark.timeout(180)

DOCKERFILE = REPO / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|git|[\w.-]+-dev)\b")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions():
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _base_image() -> str:
    args = dict(a.split("=", 1) for w, a in _instructions() if w == "ARG" and "=" in a)
    return args["PYTHON_IMAGE"]


def test_base_image_is_an_exact_python_release() -> None:
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", _base_image()), _base_image()
    for stage in _stages():
        assert stage[0][1].split()[0] == "${PYTHON_IMAGE}", "every stage on the pinned base"


def test_multi_stage_with_clean_final_stage() -> None:
    stages = _stages()
    assert len(stages) >= 2
    final = stages[-1]
    runs = " ".join(a for w, a in final if w == "RUN")
    found = BUILD_TOOLS.search(runs)
    assert not found, f"build tools in the final stage: {found}"
    assert "fuse3" in runs and re.search(r"\bmount\b", runs)
    assert "rm -rf /var/lib/apt/lists" in runs
    copies = [a for w, a in final if w == "COPY"]
    assert copies and all(a.startswith("--from=builder ") for a in copies), \
        "the final stage takes only the built environment, never the source tree"
    builder_runs = " ".join(a for w, a in stages[0] if w == "RUN")
    assert "pip wheel" in builder_runs and "--no-index" in builder_runs


def test_runs_as_non_root_with_the_cli_entrypoint() -> None:
    final = _stages()[-1]
    user = [a for w, a in final if w == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root")
    entry = [a for w, a in final if w == "ENTRYPOINT"][-1]
    assert entry.endswith('"hdfs-csi"]'), entry
    env = " ".join(a for w, a in final if w == "ENV")
    assert "HADOOP_CONF_DIR=/etc/hadoop/conf" in env


# -- build context ---------------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = pattern.strip("/").removeprefix("./")
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent
    directories decides; a ``!`` pattern re-includes."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for negate, regex in rules:
        if any(regex.match(c) for c in candidates):
            result = not negate
    return result


def build_context() -> list[str]:
    rules = dockerignore_rules((REPO / ".dockerignore").read_text())
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return sorted(f for f in files if (REPO / f).is_file() and not excluded(f, rules))


def _declared_packages() -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    names = cfg["options.packages.find"]["include"].split()
    return sorted({n.split(".")[0] for n in names})


def test_dockerignore_matcher() -> None:
    rules = dockerignore_rules("*\n!pkg\n**/__pycache__\n!keep.txt\n")
    assert excluded("tests/test_x.py", rules)
    assert not excluded("pkg/mod.py", rules)
    assert excluded("pkg/__pycache__/mod.pyc", rules)
    assert not excluded("keep.txt", rules)


def test_build_context_holds_every_package_and_nothing_else() -> None:
    context = build_context()
    tops = {f.split("/")[0] for f in context}
    for package in _declared_packages():
        assert f"{package}/__init__.py" in context, f"{package} missing from the build context"
    # long_description = file: README.md: the build fails without it.
    assert {"setup.cfg", "pyproject.toml", "README.md"} <= set(context)
    assert not tops & {"tests", "deploy", "docs", ".git", ".venv", "scripts"}
    assert not [f for f in context if "__pycache__" in f or f.endswith(".pyc")]


@pytest.mark.skipif(not (REPO / "README.md").exists(), reason="README.md not written yet")
def test_wheel_builds_from_the_build_context(tmp_path: Path) -> None:
    """What the builder stage's `pip wheel .` does, on exactly the files Docker
    would send (no isolation and no dependencies: nothing is downloaded)."""
    ctx = tmp_path / "ctx"
    for f in build_context():
        (ctx / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, ctx / f)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "--wheel-dir", str(tmp_path / "w"), str(ctx)],
                         check=False, capture_output=True, text=True, timeout=150)
    assert out.returncode == 0, out.stdout + out.stderr
    wheel = next((tmp_path / "w").glob("hdfs_csi-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "hdfs-csi = hdfs_csi.cli:main" in zf.read(entry_points).decode()
    for package in _declared_packages():
        assert f"{package}/__init__.py" in names
