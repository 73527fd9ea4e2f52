"""Helpers and fixtures for real FUSE mounts made through the daemon CLI.

(A uniquely named module rather than ``conftest.py``: several test
directories have a conftest, and ``from conftest import ...`` would pick
whichever was imported first.)  ``conftest.py`` next to this file re-exports
the fixtures.

``mount`` runs ``python -m hdfs_csi.cli mount SOURCE MNT ...`` (the same
command the CSI node service runs), waits for it to return 0, and always
unmounts in teardown, killing the mount process if unmounting alone did not
end it.  Tests needing ``/dev/fuse`` are skipped with the precise reason when
it is unusable.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fuse_mount import mounts


_REASON = mounts.fuse_unavailable_reason()


@dataclass
class Mount:
    path: Path
    source: str
    pid: int
    log: Path
    metrics_port: int | None = None
    args: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def metrics(self) -> dict[str, float]:
        """Scrape the mount's Prometheus endpoint into {sample_name{labels}: value}."""
        from fuse_mount.metrics import scrape

        assert self.metrics_port, "mounted without --metrics-port"
        return scrape(self.metrics_port)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def pid_alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hdfs_csi.cli", "mount", *args],
                          capture_output=True, text=True, timeout=timeout)


def teardown_mount(m: Mount) -> None:
    try:
        mounts.unmount(str(m.path), timeout=10)
    except OSError:
        pass
    deadline = time.monotonic() + 10
    while m.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if m.alive():
        os.kill(m.pid, signal.SIGKILL)
        mounts.unmount(str(m.path), timeout=5)


@pytest.fixture
def mount_factory(tmp_path):
    """``mount_factory(uri, *args, metrics=False) -> Mount``; unmounted at teardown."""
    if _REASON is not None:
        pytest.skip(_REASON)
    made: list[Mount] = []

    def make(source: str, *args: str, metrics: bool = False, name: str | None = None) -> Mount:
        tag = name or uuid.uuid4().hex[:8]
        mnt = tmp_path / f"mnt-{tag}"
        log = tmp_path / f"mount-{tag}.log"
        pid_file = tmp_path / f"mount-{tag}.pid"
        extra = list(args)
        port = None
        if metrics:
            port = free_port()
            extra += ["--metrics-port", str(port)]
        r = run_cli(source, str(mnt), "--log-file", str(log), "--pid-file", str(pid_file),
                    "--log-level", "DEBUG" if os.environ.get("FUSE_TEST_DEBUG") else "INFO",
                    *extra)
        if r.returncode != 0:
            logtext = log.read_text(errors="replace") if log.exists() else ""
            raise AssertionError(f"mount failed rc={r.returncode}\nstderr: {r.stderr}\n"
                                 f"log:\n{logtext[-4000:]}")
        pid = int(pid_file.read_text().strip())
        m = Mount(mnt, source, pid, log, port, extra)
        made.append(m)
        return m

    yield make
    for m in made:
        teardown_mount(m)


def hdfs_dir(hdfs, prefix: str = "fm") -> str:
    """A fresh HDFS directory for one test."""
    path = f"/{prefix}-{uuid.uuid4().hex[:10]}"
    hdfs.mkdirs(path)
    return path


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path``, to fill up (ENOSPC); skips the test without root."""
    path.mkdir(exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up (needs root): {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
