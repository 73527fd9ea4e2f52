"""Mounts survive a restart of the node service.

The FUSE daemons are started detached (``hdfs-csi mount`` daemonizes), so
killing the gRPC process does not touch them; the restarted service reads
its state directory and carries on.  A daemon that died while the service was
down is remounted at start-up.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from csi_kit import Kubelet, Mode, cap, needs_fuse, unique
from sanity_kit import DriverProcess, SanityEnv, mounts_below

from csi_driver.state import volume_key
from fuse_mount import mounts
from hdfs_csi_pb import csi_pb2

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.timeout(240)]

MiB = 1024**2


@pytest.fixture
def own_driver(sanity_env: SanityEnv, tmp_path: Path) -> Any:
    d = DriverProcess(tmp_path / "restart-driver", sanity_env.uri, node_id="restart-node",
                      extra_args=["--quota-replication", "1"]).start()
    yield d
    d.stop()


def _stage_and_publish(d: DriverProcess, k: Kubelet) -> tuple[Any, str]:
    rwx = cap(Mode.MULTI_NODE_MULTI_WRITER)
    vol = d.controller().CreateVolume(csi_pb2.CreateVolumeRequest(
        name=unique("pvc-restart"), volume_capabilities=[rwx],
        capacity_range=csi_pb2.CapacityRange(required_bytes=256 * MiB))).volume
    ctx = dict(vol.volume_context)
    d.node().NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
        volume_id=vol.volume_id, staging_target_path=str(k.staging), volume_capability=rwx,
        volume_context=ctx))
    target = k.target()
    d.node().NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
        volume_id=vol.volume_id, staging_target_path=str(k.staging), target_path=target,
        volume_capability=rwx, volume_context=ctx))
    return vol, target


def _teardown(d: DriverProcess, vol: Any, k: Kubelet, target: str) -> None:
    rwx = cap(Mode.MULTI_NODE_MULTI_WRITER)
    node = d.node()
    node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(     # still idempotent after restart
        volume_id=vol.volume_id, staging_target_path=str(k.staging), target_path=target,
        volume_capability=rwx, volume_context=dict(vol.volume_context)))
    node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=vol.volume_id,
                                                                target_path=target))
    node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
        volume_id=vol.volume_id, staging_target_path=str(k.staging)))
    d.controller().DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id))
    assert mounts_below(k.root) == []
    assert not os.path.exists(target)


def test_reader_survives_node_service_restart(own_driver: DriverProcess, kubelet: Kubelet,
                                              direct: Any) -> None:
    d = own_driver
    vol, target = _stage_and_publish(d, kubelet)
    data = os.urandom(24 * MiB)
    direct.write_file(f"{vol.volume_context['path']}/shard-000.bin", data)
    expected = hashlib.sha256(data).hexdigest()

    result: dict[str, Any] = {}
    progress = threading.Event()

    def reader() -> None:
        h, n = hashlib.sha256(), 0
        try:
            with open(os.path.join(target, "shard-000.bin"), "rb", buffering=0) as fh:
                while chunk := fh.read(256 * 1024):
                    h.update(chunk)
                    n += len(chunk)
                    if n >= 2 * MiB:
                        progress.set()
                    time.sleep(0.01)      # a slow consumer: the stream spans the restart
            result["digest"], result["bytes"] = h.hexdigest(), n
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            result["error"] = exc

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert progress.wait(60), "reader made no progress"
    d.kill()                                              # SIGKILL the node service mid-stream
    assert mounts.mount_state(target) is mounts.MountState.HEALTHY
    assert "digest" not in result, "the read finished before the restart; make it longer"
    d.start()
    t.join(120)
    assert not t.is_alive()
    assert "error" not in result, result.get("error")
    assert (result["bytes"], result["digest"]) == (len(data), expected)

    stats = d.node().NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=vol.volume_id, volume_path=target))
    assert not stats.volume_condition.abnormal           # adopted, not remounted
    assert "adopted healthy mount" in d.log_text()
    _teardown(d, vol, kubelet, target)


def test_daemon_that_died_while_the_service_was_down_is_remounted(
        own_driver: DriverProcess, kubelet: Kubelet) -> None:
    d = own_driver
    vol, target = _stage_and_publish(d, kubelet)
    Path(target, "model.txt").write_text("v1")
    d.stop(signal.SIGTERM)                                # graceful stop this time
    pid_file = Path(d.state_dir, "mounts", f"{volume_key(vol.volume_id)}.pid")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while mounts.mount_state(target) is not mounts.MountState.DEAD:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    d.start()                                             # adopts and recovers in the background
    deadline = time.monotonic() + 30
    while (mounts.mount_state(target) is not mounts.MountState.HEALTHY
           or f"volume {vol.volume_id} recovered" not in d.log_text()):
        assert time.monotonic() < deadline, d.log_tail()
        time.sleep(0.1)
    assert Path(target, "model.txt").read_text() == "v1"
    _teardown(d, vol, kubelet, target)
