"""Helpers of the CSI driver tests, importable as ``csi_kit``.

They live here, not in ``conftest.py``: several test directories have a
conftest, and ``pytest tests/csi_driver tests/minidfs`` loads both up front,
so ``from conftest import ...`` would find the other one.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import grpc
import pytest

from fuse_mount import mounts
from hdfs_csi_pb import csi_pb2

Mode = csi_pb2.VolumeCapability.AccessMode


def fuse_unavailable_reason() -> str | None:
    """Why the node tests cannot run here: FUSE itself, or no root for bind mounts."""
    reason = mounts.fuse_unavailable_reason()
    if reason is not None:
        return reason
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
