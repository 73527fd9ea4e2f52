"""What kubelet and the external-provisioner do to a volume, with real mounts.

CreateVolume -> NodeStageVolume -> NodePublishVolume to two targets (one
read-only) -> write through one, read through the other and straight from
HDFS -> writes to the read-only target fail with EROFS -> NodeUnpublish x2 ->
NodeUnstage -> DeleteVolume.  Every call is made twice (the CO retries), the
whole lifecycle runs twice with the same volume name, and afterwards nothing
is left: no mount, no directory the driver created, no state record, no
FUSE process, no HDFS directory.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any, Callable

import pytest
from csi_kit import Kubelet, Mode, cap, needs_fuse, unique
from sanity_kit import BASE_PATH, DriverProcess, mounts_below

from csi_driver.state import volume_key
from fuse_mount import mounts
from hdfs_csi_pb import csi_pb2

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.timeout(240)]

MiB = 1024**2


def twice(call: Callable[[Any], Any], request: Any) -> Any:
    first = call(request, timeout=60)
    second = call(request, timeout=60)
    assert first == second
    return first


def _process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _lifecycle(driver: DriverProcess, k: Kubelet, direct: Any, name: str) -> None:
    ctl, node = driver.controller(), driver.node()
    rwx = cap(Mode.MULTI_NODE_MULTI_WRITER)
    vol = twice(ctl.CreateVolume, csi_pb2.CreateVolumeRequest(
        name=name, volume_capabilities=[rwx],
        capacity_range=csi_pb2.CapacityRange(required_bytes=64 * MiB))).volume
    hdfs_dir = f"{BASE_PATH}/{name}"
    assert direct.get_status(hdfs_dir).is_dir
    ctx = dict(vol.volume_context)

    twice(node.NodeStageVolume, csi_pb2.NodeStageVolumeRequest(
        volume_id=vol.volume_id, staging_target_path=str(k.staging), volume_capability=rwx,
        volume_context=ctx))
    assert mounts.mount_state(str(k.staging)) is mounts.MountState.HEALTHY
    pid = int(Path(driver.state_dir, "mounts", f"{volume_key(vol.volume_id)}.pid").read_text())

    rw_target, ro_target = k.target("writer"), k.target("reader")
    for target, readonly in ((rw_target, False), (ro_target, True)):
        twice(node.NodePublishVolume, csi_pb2.NodePublishVolumeRequest(
            volume_id=vol.volume_id, staging_target_path=str(k.staging), target_path=target,
            volume_capability=rwx, readonly=readonly, volume_context=ctx))
        assert mounts.mount_state(target) is mounts.MountState.HEALTHY
    assert not mounts.find_mount(rw_target).read_only   # type: ignore[union-attr]
    assert mounts.find_mount(ro_target).read_only       # type: ignore[union-attr]

    # write through the read-write target ...
    payload = os.urandom(3 * MiB + 4321)
    os.makedirs(os.path.join(rw_target, "checkpoints"))
    with open(os.path.join(rw_target, "checkpoints", "step-100.bin"), "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    # ... read it through the read-only one and straight from HDFS
    assert Path(ro_target, "checkpoints", "step-100.bin").read_bytes() == payload
    assert direct.read_file(f"{hdfs_dir}/checkpoints/step-100.bin") == payload
    # the read-only target refuses every change with EROFS
    for attempt in (lambda: Path(ro_target, "new.txt").write_bytes(b"x"),
                    lambda: os.mkdir(os.path.join(ro_target, "d")),
                    lambda: os.unlink(os.path.join(ro_target, "checkpoints", "step-100.bin"))):
        with pytest.raises(OSError) as info:
            attempt()
        assert info.value.errno == errno.EROFS
    assert hashlib.sha256(direct.read_file(f"{hdfs_dir}/checkpoints/step-100.bin")).digest() == \
        hashlib.sha256(payload).digest()

    stats = node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=vol.volume_id, volume_path=ro_target))
    assert stats.usage[0].used == len(payload) and stats.usage[0].total == 64 * MiB

    for target in (rw_target, ro_target):
        twice(node.NodeUnpublishVolume, csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=vol.volume_id, target_path=target))
        assert not os.path.exists(target)
    twice(node.NodeUnstageVolume, csi_pb2.NodeUnstageVolumeRequest(
        volume_id=vol.volume_id, staging_target_path=str(k.staging)))
    twice(ctl.DeleteVolume, csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id))

    assert not direct.exists(hdfs_dir)
    assert mounts_below(k.root) == []
    assert sorted(os.listdir(k.target_parent)) == []
    assert k.staging.is_dir() and os.listdir(k.staging) == []
    assert list(Path(driver.state_dir, "volumes").glob("*.json")) == []
    assert not list(Path(driver.state_dir, "credentials").glob("*")) if \
        Path(driver.state_dir, "credentials").exists() else True
    assert not _process_alive(pid), "the FUSE daemon outlived NodeUnstageVolume"


def test_kubelet_lifecycle_twice(driver: DriverProcess, kubelet: Kubelet, direct: Any) -> None:
    name = unique("pvc-lifecycle")
    for _ in range(2):
        _lifecycle(driver, kubelet, direct, name)
