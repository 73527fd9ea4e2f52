"""The ``warmup`` volume attribute: a staged dataset is read into the node's disk cache in
the background by the mount itself, NodeStageVolume does not wait for it, unstaging in the
middle of it works and leaves nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from csi_kit import Kubelet, cap, code_of, needs_fuse, unique
from sanity_kit import DriverProcess

from csi_driver.state import volume_key
from hdfs_csi_pb import csi_pb2

C = grpc.StatusCode


def _stage(vol_id: str, staging: Path, context: dict[str, str]) -> Any:
    return csi_pb2.NodeStageVolumeRequest(volume_id=vol_id, staging_target_path=str(staging),
                                          volume_capability=cap(), volume_context=context)


def _allocated(root: Path) -> int:
    return sum(os.stat(os.path.join(d, f)).st_blocks * 512
               for d, _, fs in os.walk(root) for f in fs)


@needs_fuse
@pytest.mark.fuse
def test_a_staged_dataset_warms_in_the_background(driver: DriverProcess, kubelet: Kubelet,
                                                 direct: Any) -> None:
    ds = "/datasets/" + unique("warm")
    sizes = {f"train/c{i % 3}/f{i:02d}": 50_000 + 7_000 * i for i in range(30)}
    for rel, size in sizes.items():
        direct.write_file(f"{ds}/{rel}", os.urandom(size))
    direct.write_file(f"{ds}/val/other", os.urandom(2 << 20))      # not named: not warmed
    vol_id = "pv-" + unique("warm")
    key = volume_key(vol_id)
    node = driver.node()
    ctx = {"path": ds, "cacheSize": "64Mi", "readOnly": "true", "warmup": "train"}
    t0 = time.monotonic()
    node.NodeStageVolume(_stage(vol_id, kubelet.staging, ctx))
    staged_in = time.monotonic() - t0
    log = Path(driver.state_dir, "mounts", f"{key}.log")      # the mount's own log
    deadline = time.monotonic() + 60
    while "warm-up: warmed" not in (log.read_text() if log.exists() else "") and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert f"warm-up: warmed {len(sizes)} files" in text, text[-3000:]
    cache = Path(driver.state_dir, "cache", key)
    # the mount says "warmed" once the chunks are on the disk
    assert sum(sizes.values()) <= _allocated(cache) < sum(sizes.values()) + (2 << 20), \
        "the named tree is cached, the other one not"
    # a repeated stage with the same context is fine; another warmup list is not
    node.NodeStageVolume(_stage(vol_id, kubelet.staging, ctx))
    assert code_of(node.NodeStageVolume, _stage(vol_id, kubelet.staging,
                                                {**ctx, "warmup": "val"})) is C.ALREADY_EXISTS
    node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
        volume_id=vol_id, staging_target_path=str(kubelet.staging)))
    assert not log.exists() and not cache.exists()
    assert staged_in < 30


@needs_fuse
@pytest.mark.fuse
def test_unstaging_in_the_middle_of_a_warmup(driver: DriverProcess, kubelet: Kubelet,
                                             direct: Any) -> None:
    ds = "/datasets/" + unique("warmstop")
    for i in range(4):
        direct.write_file(f"{ds}/big{i}", os.urandom(8 << 20))
    vol_id = "pv-" + unique("warmstop")
    node = driver.node()
    node.NodeStageVolume(_stage(vol_id, kubelet.staging,
                                {"path": ds, "cacheSize": "256Mi", "warmup": "."}))
    t0 = time.monotonic()
    node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
        volume_id=vol_id, staging_target_path=str(kubelet.staging)))
    assert time.monotonic() - t0 < 30
    assert not list(Path(driver.state_dir, "volumes").glob("*.json"))
    assert not Path(driver.state_dir, "cache", volume_key(vol_id)).exists()


@pytest.mark.parametrize("context, words", [
    ({"warmup": "train"}, "warmup needs cacheSize"),
    ({"warmup": "../etc", "cacheSize": "1Gi"}, "inside the mount"),
    ({"warmup": "/abs", "cacheSize": "1Gi"}, "inside the mount"),
    ({"warmup": "-rf", "cacheSize": "1Gi"}, "inside the mount"),
    ({"warmup": " , ", "cacheSize": "1Gi"}, "names no path"),
])
def test_bad_warmup_attributes_are_refused_before_anything_happens(
        driver: DriverProcess, kubelet: Kubelet, context: dict[str, str], words: str) -> None:
    node = driver.node()
    req = _stage("pv-" + unique("badwarm"), kubelet.staging, {"path": "/datasets", **context})
    with pytest.raises(grpc.RpcError) as info:
        node.NodeStageVolume(req)
    assert info.value.code() is C.INVALID_ARGUMENT
    assert words in info.value.details()
    assert not os.listdir(kubelet.staging)
