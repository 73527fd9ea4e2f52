"""What both demos (``hdfs-csi demo`` and its ``--pipeline``) drive: the CSI driver
as a child process, the CSI calls kubelet and the external-provisioner make,
the checks that say what to install before anything starts, and a teardown
that runs every step even when one fails.

It lives apart from both demos so that each imports it and neither imports
the other's internals.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from minidfs.process import MiniDFSProcess, clean_env

BASE_PATH = "/k8s/volumes"

class DemoError(Exception):
    """A problem the user can fix; printed without a traceback, exit status 2."""


# -- output -------------------------------------------------------------------

def say(msg: str) -> None:
    print(msg, flush=True)


def step(title: str) -> None:
    say(f"\n==> {title}")


# -- preconditions --------------------------------------------------------------

def check_prerequisites(port: int, backend: str = "minidfs") -> None:
    """Fail early with a message that says what to install or change."""
    if backend == "hadoop":
        from hdfs_backends import backend_unavailable

        reason = backend_unavailable("hadoop")
        if reason:
            raise DemoError(f"--backend hadoop cannot run here: {reason}")
        if port:
            raise DemoError("--port sets minidfs's NameNode port; the hadoop backend always "
                            "binds free ports (drop --port)")
    if not os.path.exists("/dev/fuse"):
        raise DemoError("/dev/fuse is missing: load the fuse module (modprobe fuse) or, in a "
                        "container, run with --device /dev/fuse --cap-add SYS_ADMIN")
    if not shutil.which("fusermount3"):
        raise DemoError("fusermount3 not found: install it with `apt-get install -y fuse3` "
                        "(scripts/quickstart.sh does this for you)")
    if os.geteuid() != 0:
        raise DemoError("the demo bind-mounts volumes like kubelet does, which needs root; "
                        "run it as root (or with sudo)")
    if port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                raise DemoError(f"port {port} is in use: pick another with --port, "
                                "or --port 0 for any free port") from None


# -- child processes --------------------------------------------------------------

@dataclass
class Child:
    name: str
    proc: subprocess.Popen[str]
    log_path: str

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self) -> str:
        return _log_tail(self.log_path)


def _log_tail(path: str, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    return ""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hdfs_csi", *args]


def start_hadoop(workdir: str, block_size: int) -> tuple[Any, str]:
    """Apache Hadoop's NameNode + DataNode (MiniDFSCluster) in a JVM of its own."""
    from hadoop_cluster import HadoopCluster, HadoopClusterError

    dfs = HadoopCluster(os.path.join(workdir, "hadoop"), datanodes=1, block_size=block_size)
    try:
        dfs.start()
    except HadoopClusterError as exc:
        dfs.stop()
        raise DemoError(str(exc)) from None
    return dfs, dfs.uri


def start_minidfs(workdir: str, port: int, block_size: int) -> tuple[MiniDFSProcess, str]:
    """minidfs in its own process (as in a cluster), through the helper the tests use."""
    dfs = MiniDFSProcess(os.path.join(workdir, "minidfs"), port=port, block_size=block_size,
                         log_file=os.path.join(workdir, "minidfs.log"))
    try:
        dfs.start()
    except RuntimeError as exc:
        dfs.stop()
        raise DemoError(f"{exc}:\n{_log_tail(dfs.log_file or '')}") from None
    return dfs, dfs.uri


def start_driver(workdir: str, hdfs_uri: str) -> tuple[Child, str]:
    sock = os.path.join(workdir, "csi", "csi.sock")
    os.makedirs(os.path.dirname(sock), exist_ok=True)
    log_path = os.path.join(workdir, "driver.log")
    with open(log_path, "w", encoding="utf-8") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            _cli("driver", "--mode", "all", "--endpoint", f"unix://{sock}", "--node-id",
                 "demo-node", "--hdfs-uri", hdfs_uri, "--base-path", BASE_PATH,
                 "--state-dir", os.path.join(workdir, "driver-state")),
            stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env=clean_env(),
        )
    child = Child("driver", proc, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"the CSI driver exited with status {proc.returncode}:\n"
                            f"{child.log_tail()}")
        if os.path.exists(sock):
            return child, f"unix://{sock}"
        time.sleep(0.1)
    child.stop()
    raise DemoError(f"the CSI driver did not open its socket within 60 s:\n{child.log_tail()}")


# -- the dataset ------------------------------------------------------------------

@dataclass

class Csi:
    """The handful of CSI calls kubelet and the external-provisioner make."""

    def __init__(self, endpoint: str):
        import grpc

        from hdfs_csi_pb import csi_pb2, csi_pb2_grpc

        self.pb = csi_pb2
        self.channel = grpc.insecure_channel(endpoint)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.identity = csi_pb2_grpc.IdentityStub(self.channel)
        self.controller = csi_pb2_grpc.ControllerStub(self.channel)
        self.node = csi_pb2_grpc.NodeStub(self.channel)

    def capability(self, mode: str) -> object:
        pb = self.pb
        modes = {
            "rox": pb.VolumeCapability.AccessMode.MULTI_NODE_READER_ONLY,
            "rwx": pb.VolumeCapability.AccessMode.MULTI_NODE_MULTI_WRITER,
        }
        return pb.VolumeCapability(
            mount=pb.VolumeCapability.MountVolume(),
            access_mode=pb.VolumeCapability.AccessMode(mode=modes[mode]),
        )

    def close(self) -> None:
        self.channel.close()

class Teardown:
    """LIFO cleanup that runs every step even if one fails, and reports failures."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], None]]] = []
        self.failures: list[str] = []

    def push(self, what: str, fn: Callable[[], None]) -> None:
        self._steps.append((what, fn))

    def run(self) -> None:
        while self._steps:
            what, fn = self._steps.pop()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep tearing down
                self.failures.append(f"{what}: {exc}")
