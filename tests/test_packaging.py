"""The driver installs lean: the benchmark's libraries are an extra.

The driver image runs privileged on every node; what it does not need it
should not carry.  These tests read the package metadata and run the real
command line with the benchmark's libraries made unimportable.
"""

from __future__ import annotations

import configparser
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH_ONLY = ("pyarrow", "numpy", "matplotlib", "tqdm")


def _requires(section: str, key: str) -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [ln.strip() for ln in cfg[section][key].splitlines() if ln.strip()]
    return {ln.split(">")[0].split("=")[0].split("<")[0].strip().lower() for ln in lines}


def test_benchmark_libraries_are_an_extra_not_a_runtime_requirement() -> None:
    runtime = _requires("options", "install_requires")
    assert not runtime & set(BENCH_ONLY), runtime & set(BENCH_ONLY)
    assert set(BENCH_ONLY) <= _requires("options.extras_require", "bench")


@pytest.fixture
def without_bench_libraries(tmp_path: pathlib.Path) -> dict[str, str]:
    """An environment in which ``import pyarrow`` (numpy, ...) fails, as in the driver image."""
    for name in BENCH_ONLY:
        (tmp_path / f"{name}.py").write_text(
            f'raise ImportError("No module named {name} (blocked by the test)")\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, text=True,
                          capture_output=True, timeout=120)


def test_driver_mount_and_minidfs_run_without_the_benchmark_libraries(
        without_bench_libraries: dict[str, str]) -> None:
    env = without_bench_libraries
    probe = _run(env, "-c", "import pyarrow")
    assert probe.returncode != 0 and "ImportError: No module named pyarrow" in probe.stderr
    for command in ("driver", "mount", "minidfs"):
        done = _run(env, "-m", "hdfs_csi", command, "--help")
        assert done.returncode == 0, (command, done.stderr[-2000:])
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts)
               for pkg in ("csi_driver", "fuse_mount", "hdfs_client", "minidfs",
                           "hadoop_wire", "hdfs_csi_common")
               for p in sorted((ROOT / pkg).glob("*.py")) if p.name != "__main__.py"]
    done = _run(env, "-c", "import importlib, sys\n"
                f"for m in {modules!r}: importlib.import_module(m)")
    assert done.returncode == 0, done.stderr[-2000:]


def test_bench_without_its_libraries_says_which_extra_to_install(
        without_bench_libraries: dict[str, str]) -> None:
    done = _run(without_bench_libraries, "-m", "hdfs_csi", "bench", "--help")
    assert done.returncode == 2
    assert "pip install 'hdfs-csi[bench]'" in done.stderr
    assert "Traceback" not in done.stderr
