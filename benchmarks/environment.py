"""The processes a benchmark run needs, started and always torn down.

* :class:`MiniDfsProcess`: an embedded HDFS in its own process, so the
  NameNode and DataNode never compete with the measuring process for its
  GIL, optionally throttled by a :class:`Profile` to look like a remote
  cluster.
* :class:`HadoopDfs`: Apache Hadoop's own HDFS (``--backend hadoop``: a
  MiniDFSCluster in a JVM, :mod:`hadoop_cluster`), so the same scenarios
  measure the mount against Hadoop's DataNode.  Not throttled.
* :class:`MountProcess`: ``hdfs-csi mount`` as the CSI node runs it (a
  daemon, not our child), unmounted and stopped on teardown.
* :func:`describe_environment`: versions and machine facts for the JSON.

Teardown happens through context managers on every exit path; the CLI turns
SIGTERM into KeyboardInterrupt so a killed benchmark cleans up like Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from fuse_mount import mounts

log = logging.getLogger(__name__)


class SetupError(RuntimeError):
    """A part of the benchmark environment could not be set up; the message says why."""


# -- throttle profiles ------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    """How minidfs is slowed down to stand in for a cluster across a network."""

    name: str
    bandwidth_per_stream: float | None   #: bytes/s per DataNode read stream, None = unlimited
    latency_s: float                      #: added to every NameNode RPC
    description: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


PROFILES: dict[str, Profile] = {
    "local": Profile("local", None, 0.0, "minidfs on this machine, no throttling"),
    # a 10 GbE cluster: one TCP stream rarely beats ~1/3 of the link; ~0.25 ms RTT
    "remote-10g": Profile("remote-10g", 400e6, 0.00025,
                          "10 Gbit/s network: 400 MB/s per stream, 0.25 ms per NameNode RPC"),
    # a 1 GbE cluster or a cross-zone link: ~110 MB/s per stream, 1 ms RTT
    "remote-1g": Profile("remote-1g", 110e6, 0.001,
                         "1 Gbit/s network: 110 MB/s per stream, 1 ms per NameNode RPC"),
}


# -- child process helpers ----------------------------------------------------------------------

def hdfs_csi_command(*args: str) -> list[str]:
    """``hdfs-csi ...`` with the interpreter running us (works without the entry point)."""
    return [sys.executable, "-m", "hdfs_csi", *args]


def wait_for_log(log_file: str, pattern: re.Pattern[str], timeout: float,
                 poll: float = 0.05) -> re.Match[str] | None:
    """The first match of ``pattern`` in ``log_file`` (a mount's log, read again every
    ``poll`` s until it shows up), None after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            with open(log_file, encoding="utf-8", errors="replace") as fh:
                hit = pattern.search(fh.read())
            if hit:
                return hit
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)


def _tail(path: str, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    return ""


def _clean_env() -> dict[str, str]:
    from minidfs.process import clean_env

    # a caller's Hadoop settings (config pointers, identity) must not leak into our mount
    env = clean_env()
    env.pop("HADOOP_USER_NAME", None)
    return env


# -- minidfs ------------------------------------------------------------------------------------

class MiniDfsProcess:
    """minidfs in a child process (``MiniDFS.spawn``), throttled by a :class:`Profile`.

    Its data directory persists across runs, so an uploaded dataset is reused.
    """

    def __init__(self, data_dir: str, *, profile: Profile, block_size: int,
                 datanodes: int = 1, start_timeout: float = 60.0):
        self.data_dir = data_dir
        self.profile = profile
        self.block_size = block_size
        self.datanodes = datanodes
        self.start_timeout = start_timeout
        self.log_path = os.path.join(data_dir, "minidfs.log")
        self.uri: str | None = None
        self._proc: Any = None

    def options(self) -> dict[str, Any]:
        p = self.profile
        opts: dict[str, Any] = {
            # the dataset is written once and can be regenerated: skip fsync per block
            "no_fsync": True,
            "rpc_latency": f"{p.latency_s * 1000:g}ms" if p.latency_s else None,
            "stream_bandwidth": (str(int(p.bandwidth_per_stream))
                                 if p.bandwidth_per_stream else None),
        }
        return {k: v for k, v in opts.items() if v is not None}

    def start(self) -> str:
        # MiniDFS.spawn() would be MiniDFSProcess(...).start(); keeping the handle
        # before start() lets an interrupt during start-up still stop the child
        from minidfs.process import MiniDFSProcess

        os.makedirs(self.data_dir, exist_ok=True)
        self._proc = MiniDFSProcess(self.data_dir, datanodes=self.datanodes,
                                    block_size=self.block_size, log_file=self.log_path,
                                    startup_timeout=self.start_timeout, **self.options())
        try:
            self._proc.start()
        except (RuntimeError, OSError) as exc:
            self.stop()
            raise SetupError(f"minidfs did not start: {exc}; log tail:\n{_tail(self.log_path)}") \
                from exc
        except BaseException:
            self.stop()
            raise
        self.uri = self._proc.uri
        return self._proc.uri

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()

    def __enter__(self) -> "MiniDfsProcess":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- Apache Hadoop ------------------------------------------------------------------------------

class HadoopDfs:
    """Hadoop's MiniDFSCluster (one NameNode, ``datanodes`` DataNodes) in a child JVM.

    Like :class:`MiniDfsProcess`, its data directory persists across runs
    (``keep_data``), so an uploaded dataset is reused; it cannot be throttled.
    """

    def __init__(self, data_dir: str, *, block_size: int, datanodes: int = 1,
                 start_timeout: float = 300.0):
        self.data_dir = data_dir
        self.block_size = block_size
        self.datanodes = datanodes
        self.start_timeout = start_timeout
        self.log_path = os.path.join(data_dir, "hadoop.log")
        self.uri: str | None = None
        self._cluster: Any = None

    def start(self) -> str:
        from hdfs_backends import backend_unavailable

        reason = backend_unavailable("hadoop")
        if reason:
            raise SetupError(f"--backend hadoop is unavailable here: {reason}")
        from hadoop_cluster import HadoopCluster, HadoopClusterError

        os.makedirs(self.data_dir, exist_ok=True)
        # Full tiered JIT (C2), as a production DataNode runs: the launcher's
        # default stops at C1 for a fast test start-up, which is not what a
        # throughput comparison should measure.
        self._cluster = HadoopCluster(self.data_dir, datanodes=self.datanodes,
                                      block_size=self.block_size, keep_data=True,
                                      startup_timeout=self.start_timeout, heap="1g",
                                      jvm_options=("-XX:TieredStopAtLevel=4",))
        try:
            self._cluster.start()
        except HadoopClusterError as exc:
            self.stop()
            raise SetupError(f"Hadoop HDFS did not start: {exc}") from exc
        except BaseException:
            self.stop()
            raise
        self.uri = self._cluster.uri
        log.info("Hadoop HDFS up in %.1f s: %s", self._cluster.startup_seconds, self.uri)
        return self.uri

    def stop(self) -> None:
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.stop()

    def __enter__(self) -> "HadoopDfs":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the FUSE mount -----------------------------------------------------------------------------

def fuse_unavailable_reason() -> str | None:
    """None if this machine can FUSE-mount, else why not (for a 'skipped' result)."""
    reason = mounts.fuse_unavailable_reason()
    if reason is not None:
        return reason
    try:
        import fuse_mount.cli  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any failure means the mount cannot run
        return f"hdfs-csi mount is unavailable ({type(exc).__name__}: {exc})"
    return None


class MountProcess:
    """One read-only ``hdfs-csi mount`` daemon over ``source`` (an hdfs:// URI with a
    path), with a disk cache when ``cache_dir`` is given."""

    def __init__(self, source: str, mountpoint: str, *, cache_dir: str | None, log_file: str,
                 pid_file: str, extra_args: list[str] | None = None, timeout: float = 60.0):
        self.source = source
        self.mountpoint = mountpoint
        self.cache_dir = cache_dir
        self.log_file = log_file
        self.pid_file = pid_file
        self.extra_args = list(extra_args or [])
        self.timeout = timeout
        self._started = False

    def command(self) -> list[str]:
        cache = ["--cache-dir", self.cache_dir] if self.cache_dir else []
        return hdfs_csi_command(
            "mount", self.source, self.mountpoint, "--read-only", *cache,
            "--pid-file", self.pid_file, "--log-file", self.log_file, *self.extra_args)

    def start(self) -> None:
        os.makedirs(self.mountpoint, exist_ok=True)
        if self.cache_dir:
            os.makedirs(self.cache_dir, exist_ok=True)
        self._started = True
        try:
            self._start()
        except BaseException:
            # Failed, or interrupted anywhere on the way (also after the helper returned
            # and the mount is up, while waiting for it to answer): __exit__ will not run,
            # so nothing may be left mounted or running.
            self.stop()
            raise

    def _start(self) -> None:
        try:
            proc = subprocess.run(self.command(), capture_output=True, text=True,
                                  timeout=self.timeout, env=_clean_env())
        except subprocess.TimeoutExpired:
            raise SetupError(f"hdfs-csi mount did not return within {self.timeout:.0f} s; "
                             f"log tail:\n{_tail(self.log_file)}") from None
        if proc.returncode != 0:
            raise SetupError(
                f"hdfs-csi mount failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
                f"\nlog tail:\n{_tail(self.log_file)}")
        if not mounts.wait_mounted(self.mountpoint, timeout=10):
            raise SetupError(f"hdfs-csi mount exited 0 but {self.mountpoint} is not a "
                             f"healthy FUSE mount; log tail:\n{_tail(self.log_file)}")

    def daemon_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            with open(self.pid_file, encoding="ascii") as fh:
                return int(fh.read().strip())
        return None

    def stop(self, timeout: float = 10.0) -> None:
        """Unmount, make sure the daemon is gone, and leave no dead mount behind.

        Also right after an interrupted start, when the daemon may still be on
        its way to mounting: SIGTERM is its documented way to stop (it unmounts).
        """
        pid = self.daemon_pid()
        end = time.monotonic() + 2
        while pid is None and self._started and time.monotonic() < end:
            time.sleep(0.05)  # interrupted before the daemon wrote its pid file
            pid = self.daemon_pid()
        with contextlib.suppress(OSError):
            mounts.unmount(self.mountpoint, timeout=timeout)
        if pid is not None and not _wait_gone(pid, 2.0):
            log.info("mount daemon %d still running; sending SIGTERM", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout):
                log.warning("mount daemon %d ignored SIGTERM; killing it", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
        with contextlib.suppress(OSError):
            mounts.unmount(self.mountpoint, timeout=timeout)  # whatever a kill left behind
        self._started = False

    def __enter__(self) -> "MountProcess":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_gone(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purposes (it is not our child: the daemon double-forked)
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            if fh.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
    return True


# -- environment description --------------------------------------------------------

def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return None


def _mem_total() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    return None


def _fuse_version() -> str | None:
    exe = shutil.which("fusermount3")
    if not exe:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).strip() or None
    return None


def describe_environment() -> dict[str, Any]:
    from hdfs_csi_common import __version__

    return {
        "hdfs_csi": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "mem_total_bytes": _mem_total(),
        "load_avg_at_start": list(os.getloadavg()),
        "fusermount3": _fuse_version(),
        "packages": {name: _version(name) for name in (
            "hdfs-native", "mfusepy", "pyarrow", "numpy", "torch", "tqdm", "matplotlib")},
    }
