"""The ``cachePool`` volume attribute through the node service: NodeStageVolume of a
dataset makes its mount add HDFS cache directives, NodeUnstageVolume removes them,
and a bad value is refused before anything is mounted."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from csi_kit import Kubelet, Mode, cap, needs_fuse, unique
from sanity_kit import DriverProcess, SanityEnv
from test_csi_node import publish_req, stage_req

from fuse_mount import mounts
from hdfs_client.admin_rpc import AdminRpcClient
from hdfs_csi_pb import csi_pb2


@pytest.fixture
def pool(sanity_env: SanityEnv) -> Any:
    admin = AdminRpcClient(sanity_env.uri)
    name = f"ds-{uuid.uuid4().hex[:8]}"
    admin.add_cache_pool(name, mode=0o777)
    yield admin, name
    admin.remove_cache_pool(name)
    admin.close()


def _paths(admin: AdminRpcClient, pool: str) -> set[str]:
    return {d.path for d in admin.list_cache_directives(pool=pool)}


def _wait(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


@needs_fuse
@pytest.mark.fuse
def test_a_staged_dataset_is_kept_in_the_cluster_cache_until_unstaged(
        driver: DriverProcess, kubelet: Kubelet, direct: Any, pool: Any) -> None:
    admin, name = pool
    ds = "/datasets/" + unique("cc")
    files = {f"train/cls-{c}/img-{i}.jpg": os.urandom(2000 + i) for c in "ab" for i in range(3)}
    for rel, data in files.items():
        direct.write_file(f"{ds}/{rel}", data)
    rox = cap(Mode.MULTI_NODE_READER_ONLY)
    ctx = {"path": ds, "readOnly": "true", "cachePool": name, "cachePoolTtl": "10m",
           "cachePoolReplication": "2"}
    node = driver.node()
    node.NodeStageVolume(stage_req("pv-cc", kubelet.staging, rox, ctx), timeout=60)
    target = kubelet.target()
    node.NodePublishVolume(publish_req("pv-cc", kubelet.staging, target, rox, readonly=True,
                                       context=ctx), timeout=60)
    want = {f"{ds}/train/cls-a", f"{ds}/train/cls-b"}
    assert _wait(lambda: _paths(admin, name) == want), _paths(admin, name)
    listed = admin.list_cache_directives(pool=name)
    assert {d.replication for d in listed} == {2}
    assert all(590_000 < d.expiry_ms - time.time() * 1000 <= 600_000 for d in listed)
    for rel, data in files.items():
        assert Path(target, rel).read_bytes() == data
    node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id="pv-cc",
                                                                target_path=target))
    node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
        volume_id="pv-cc", staging_target_path=str(kubelet.staging)), timeout=60)
    assert _wait(lambda: _paths(admin, name) == set()), _paths(admin, name)


@pytest.mark.parametrize("attrs, says", [
    ({"cachePoolTtl": "5s"}, "at least 60"),
    ({"cachePoolTtl": "200h"}, "must not exceed"),
    ({"cachePool": "has space"}, "not a cache pool name"),
    ({"cachePoolReplication": "0"}, "at least 1"),
])
def test_a_bad_cache_attribute_is_refused_before_mounting(
        driver: DriverProcess, kubelet: Kubelet, attrs: dict[str, str], says: str) -> None:
    ctx = {"path": "/datasets/x", "readOnly": "true", "cachePool": "p", **attrs}
    with pytest.raises(grpc.RpcError) as info:
        driver.node().NodeStageVolume(stage_req(
            "pv-bad-cc", kubelet.staging, cap(Mode.MULTI_NODE_READER_ONLY), ctx), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in info.value.details()
    assert mounts.find_mount(str(kubelet.staging)) is None
