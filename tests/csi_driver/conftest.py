"""Fixtures for the CSI driver tests: a real driver on a real unix socket.

* ``sanity_env`` (module scope): minidfs subprocess + ``hdfs-csi driver
  --mode all`` subprocess, exactly as an independent conformance suite runs
  it (see ``sanity_runner.py``).
* ``kubelet``: per-test staging directory and target parent directory, as
  csi-sanity creates them; teardown fails the test if anything is still
  mounted below them (after unmounting it, so later tests start clean).
* ``hdfs``-like direct client: ``direct`` (an HdfsClient on the same cluster).
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from sanity_runner import DriverProcess, SanityEnv, mounts_below, unmount_below  # noqa: E402

from hdfs_csi_pb import csi_pb2  # noqa: E402

Mode = csi_pb2.VolumeCapability.AccessMode


def fuse_unavailable_reason() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist (no FUSE kernel module or not exposed to this container)"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as exc:
        return f"/dev/fuse cannot be opened: {exc.strerror}"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian package fuse3)"
    if os.geteuid() != 0:
        return "bind mounts need root (CAP_SYS_ADMIN)"
    return None


FUSE_REASON = fuse_unavailable_reason()
needs_fuse = pytest.mark.skipif(FUSE_REASON is not None, reason=FUSE_REASON or "")


def cap(mode: int = Mode.SINGLE_NODE_WRITER, *, flags: tuple[str, ...] = (),
        fs_type: str = "", block: bool = False) -> Any:
    if block:
        return csi_pb2.VolumeCapability(block=csi_pb2.VolumeCapability.BlockVolume(),
                                        access_mode=Mode(mode=mode))
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(fs_type=fs_type, mount_flags=list(flags)),
        access_mode=Mode(mode=mode))


def code_of(fn: Callable[..., Any], request: Any) -> grpc.StatusCode:
    """Call and return the status code (OK when it succeeds)."""
    try:
        fn(request, timeout=60)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Kubelet:
    root: Path
    staging: Path          #: created, like csi-sanity's StagingPath
    target_parent: Path    #: created; targets are entries inside it

    def target(self, name: str = "target") -> str:
        return str(self.target_parent / name)


@pytest.fixture(scope="module")
def sanity_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SanityEnv]:
    env = SanityEnv(tmp_path_factory.mktemp("csi-env")).start()
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture
def driver(sanity_env: SanityEnv) -> DriverProcess:
    assert sanity_env.driver is not None
    if sanity_env.driver.proc is None or sanity_env.driver.proc.poll() is not None:
        sanity_env.driver.start()  # a previous test stopped it
    return sanity_env.driver


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[Kubelet]:
    k = Kubelet(tmp_path, tmp_path / "csi-staging", tmp_path / "csi-mount")
    k.staging.mkdir()
    k.target_parent.mkdir()
    yield k
    left = mounts_below(tmp_path)
    unmount_below(tmp_path)
    assert not left, f"mounts left behind: {left}"


@pytest.fixture
def direct(sanity_env: SanityEnv) -> Iterator[Any]:
    from hdfs_client import connect

    client = connect(sanity_env.dfs.uri)
    try:
        yield client
    finally:
        client.close()
