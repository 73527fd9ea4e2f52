"""Run ``hdfs-csi driver --mode all`` the way an independent CSI conformance suite does.

An external suite (csi-sanity or similar) is given one unix socket, a staging
path and a target parent directory under a temporary directory, and a
driver whose ``--hdfs-uri``/``--base-path`` defaults make CreateVolume work
with no parameters and no secrets.  :class:`SanityEnv` builds exactly that:
a minidfs *subprocess* as backend, the driver as a *subprocess*, and the
paths.  The pytest fixtures in ``conftest.py`` use it, and it can be run
by hand to point a real csi-sanity at it::

    python tests/csi_driver/sanity_runner.py
    # prints: --csi.endpoint=... --csi.stagingdir=... --csi.mountdir=...

Everything started is stopped and unmounted on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import grpc  # noqa: E402

from fuse_mount import mounts  # noqa: E402
from minidfs.process import MiniDFSProcess, clean_env  # noqa: E402
from hdfs_csi_pb import csi_pb2, csi_pb2_grpc  # noqa: E402

BASE_PATH = "/k8s/volumes"


class DriverProcess:
    """``hdfs-csi driver`` as a child process on a unix socket."""

    def __init__(self, workdir: str | os.PathLike[str], hdfs_uri: str, *, mode: str = "all",
                 node_id: str = "sanity-node", base_path: str | None = BASE_PATH,
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket = self.workdir / "csi.sock"
        self.endpoint = f"unix://{self.socket}"
        self.state_dir = self.workdir / "state"
        self.log_file = self.workdir / "driver.log"
        self.hdfs_uri = hdfs_uri
        self.mode = mode
        self.node_id = node_id
        self.base_path = base_path
        self.extra_args = list(extra_args)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    def command_line(self) -> list[str]:
        cmd = [sys.executable, "-m", "hdfs_csi", "driver", "--mode", self.mode,
               "--endpoint", self.endpoint, "--node-id", self.node_id,
               "--state-dir", str(self.state_dir), "--hdfs-uri", self.hdfs_uri,
               "--log-level", "INFO"]
        if self.base_path:
            cmd += ["--base-path", self.base_path]
        return cmd + self.extra_args

    def start(self, timeout: float = 30.0) -> "DriverProcess":
        env = clean_env(self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=str(REPO), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"driver exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.socket.exists():
                try:
                    self.identity().Probe(csi_pb2.ProbeRequest(), timeout=2)
                    return self
                except grpc.RpcError:
                    pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"driver did not answer Probe within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    # -- gRPC -------------------------------------------------------------------------------
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.endpoint)
        return self._channel

    def identity(self) -> Any:
        return csi_pb2_grpc.IdentityStub(self.channel())

    def controller(self) -> Any:
        return csi_pb2_grpc.ControllerStub(self.channel())

    def node(self) -> Any:
        return csi_pb2_grpc.NodeStub(self.channel())

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    # -- life cycle -----------------------------------------------------------------------------
    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        self._close_channel()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the driver alone (not its FUSE daemons: they are not its children)."""
        self.stop(signal.SIGKILL)

    def restart(self) -> "DriverProcess":
        self.stop()
        return self.start()


class SanityEnv:
    """minidfs subprocess + driver subprocess + the two directories a suite uses."""

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *,
                 driver_args: Sequence[str] = ("--quota-replication", "1"),
                 block_size: str = "1M"):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="hdfs-csi-sanity-"))
        self.driver_args = list(driver_args)
        self.block_size = block_size
        self.dfs: Any = None
        self.driver: DriverProcess | None = None
        self.staging = self.workdir / "csi-staging"
        self.target_parent = self.workdir / "csi-mount"

    def start(self) -> "SanityEnv":
        (self.workdir / "dfs").mkdir(parents=True, exist_ok=True)
        self.dfs = MiniDFSProcess(self.workdir / "dfs", datanodes=1, block_size=self.block_size,
                                  log_file=str(self.workdir / "minidfs.log")).start()
        self.driver = DriverProcess(self.workdir / "driver", self.dfs.uri,
                                    extra_args=self.driver_args).start()
        return self

    def stop(self) -> None:
        try:
            if self.driver is not None:
                self.driver.stop()
        finally:
            unmount_below(self.workdir)
            if self.dfs is not None:
                self.dfs.stop()

    def __enter__(self) -> "SanityEnv":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def mounts_below(path: str | os.PathLike[str]) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    return [e.mountpoint for e in mounts.mount_table() if e.mountpoint.startswith(prefix)]


def unmount_below(path: str | os.PathLike[str]) -> list[str]:
    """Unmount everything below ``path`` (deepest first); return what was mounted."""
    left = mounts_below(path)
    for mp in sorted(left, key=len, reverse=True):
        with contextlib.suppress(OSError):
            mounts.unmount(mp)
    return left


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    env = SanityEnv(args.workdir).start()
    assert env.driver is not None
    print(f"--csi.endpoint={env.driver.endpoint} --csi.stagingdir={env.staging} "
          f"--csi.mountdir={env.target_parent}", flush=True)
    print("driver log:", env.driver.log_file, "- Ctrl-C to stop", flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        env.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
