"""Conformance of the Node service, from the CSI spec and csi-sanity's node tests.

Real FUSE mounts (``hdfs-csi mount``) and real bind mounts; minidfs as the
cluster; the driver over its unix socket.  Paths are laid out the way
csi-sanity does: a staging directory that exists, and a target *inside* an
existing parent directory that the driver must create and later remove.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import signal
import stat
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from csi_kit import Kubelet, Mode, cap, code_of, needs_fuse, unique
from sanity_kit import BASE_PATH, DriverProcess, SanityEnv

from csi_driver.state import volume_key
from fuse_mount import mounts
from hdfs_csi_pb import csi_pb2

pytestmark = pytest.mark.timeout(180)

C = grpc.StatusCode
NodeRPC = csi_pb2.NodeServiceCapability.RPC
MiB = 1024**2


def create(driver: DriverProcess, name: str | None = None, required: int = 64 * MiB,
           params: dict[str, str] | None = None) -> Any:
    return driver.controller().CreateVolume(csi_pb2.CreateVolumeRequest(
        name=name or unique("sanity-node"), volume_capabilities=[cap()], parameters=params or {},
        capacity_range=csi_pb2.CapacityRange(required_bytes=required)), timeout=60).volume


def stage_req(vol_id: str, staging: str | Path, capability: Any = None,
              context: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> Any:
    return csi_pb2.NodeStageVolumeRequest(
        volume_id=vol_id, staging_target_path=str(staging),
        volume_capability=capability if capability is not None else cap(),
        volume_context=context or {}, secrets=secrets or {})


def publish_req(vol_id: str, staging: str | Path, target: str, capability: Any = None,
                readonly: bool = False, context: dict[str, str] | None = None) -> Any:
    return csi_pb2.NodePublishVolumeRequest(
        volume_id=vol_id, staging_target_path=str(staging), target_path=target,
        volume_capability=capability if capability is not None else cap(), readonly=readonly,
        volume_context=context or {})


def teardown_volume(driver: DriverProcess, vol: Any, k: Kubelet, targets: list[str]) -> None:
    node = driver.node()
    for t in targets:
        node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=vol.volume_id,
                                                                    target_path=t))
    node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(volume_id=vol.volume_id,
                                                            staging_target_path=str(k.staging)))
    driver.controller().DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id))


# -- capabilities and argument checks (no mounts) --------------------------------------------------

def test_node_capabilities_and_info(driver: DriverProcess) -> None:
    caps = driver.node().NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest()).capabilities
    assert {c.rpc.type for c in caps} == {NodeRPC.STAGE_UNSTAGE_VOLUME, NodeRPC.GET_VOLUME_STATS,
                                          NodeRPC.VOLUME_CONDITION}
    info = driver.node().NodeGetInfo(csi_pb2.NodeGetInfoRequest())
    # no --max-volumes-per-node: 0, "no limit" (a FUSE mount uses no attach slot)
    assert info.node_id == "sanity-node" and info.max_volumes_per_node == 0
    assert not info.HasField("accessible_topology")
    assert code_of(driver.node().NodeExpandVolume, csi_pb2.NodeExpandVolumeRequest(
        volume_id="x", volume_path="/x")) is C.UNIMPLEMENTED


def test_missing_fields_are_invalid_argument(driver: DriverProcess, kubelet: Kubelet) -> None:
    node = driver.node()
    fake = "fake-vol-id-" + unique("x")
    target = kubelet.target()
    cases = [
        (node.NodePublishVolume, csi_pb2.NodePublishVolumeRequest()),
        (node.NodePublishVolume, csi_pb2.NodePublishVolumeRequest(volume_id=fake)),
        (node.NodePublishVolume, csi_pb2.NodePublishVolumeRequest(
            volume_id=fake, target_path=target)),
        (node.NodeUnpublishVolume, csi_pb2.NodeUnpublishVolumeRequest()),
        (node.NodeUnpublishVolume, csi_pb2.NodeUnpublishVolumeRequest(volume_id=fake)),
        (node.NodeStageVolume, csi_pb2.NodeStageVolumeRequest(
            staging_target_path=str(kubelet.staging), volume_capability=cap(),
            publish_context={"device": "/dev/mock"})),
        (node.NodeStageVolume, csi_pb2.NodeStageVolumeRequest(
            volume_id=fake, volume_capability=cap())),
        (node.NodeStageVolume, csi_pb2.NodeStageVolumeRequest(
            volume_id=fake, staging_target_path=str(kubelet.staging))),
        (node.NodeStageVolume, stage_req(fake, kubelet.staging, cap(block=True))),
        (node.NodeStageVolume, stage_req(fake, "relative/path")),
        (node.NodeUnstageVolume, csi_pb2.NodeUnstageVolumeRequest(
            staging_target_path=str(kubelet.staging))),
        (node.NodeUnstageVolume, csi_pb2.NodeUnstageVolumeRequest(volume_id=fake)),
        (node.NodeGetVolumeStats, csi_pb2.NodeGetVolumeStatsRequest(volume_path="some/path")),
        (node.NodeGetVolumeStats, csi_pb2.NodeGetVolumeStatsRequest(volume_id=fake)),
    ]
    for fn, req in cases:
        assert code_of(fn, req) is C.INVALID_ARGUMENT, req
    assert not os.path.exists(target)


def test_unknown_volumes_and_paths(driver: DriverProcess, kubelet: Kubelet) -> None:
    node = driver.node()
    fake = "fake-vol-id-" + unique("x")
    # undoing something that was never done is success
    assert code_of(node.NodeUnpublishVolume, csi_pb2.NodeUnpublishVolumeRequest(
        volume_id=fake, target_path=kubelet.target())) is C.OK
    assert code_of(node.NodeUnstageVolume, csi_pb2.NodeUnstageVolumeRequest(
        volume_id=fake, staging_target_path=str(kubelet.staging))) is C.OK
    assert code_of(node.NodeGetVolumeStats, csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=fake, volume_path="some/path")) is C.NOT_FOUND
    # an id that is not ours and no static attributes: the volume does not exist
    assert code_of(node.NodeStageVolume, stage_req(fake, kubelet.staging)) is C.NOT_FOUND
    assert code_of(node.NodePublishVolume, publish_req(fake, kubelet.staging,
                                                       kubelet.target())) is C.NOT_FOUND
    assert kubelet.staging.is_dir() and not os.listdir(kubelet.staging)


def test_stage_of_missing_hdfs_paths_creates_nothing(driver: DriverProcess,
                                                     kubelet: Kubelet) -> None:
    node = driver.node()
    staging = kubelet.root / "not-yet"        # would be created by the driver
    missing = stage_req("pv-missing", staging, context={"path": "/datasets/nope"})
    assert code_of(node.NodeStageVolume, missing) is C.NOT_FOUND
    pinned = stage_req("pv-pinned", staging, cap(Mode.MULTI_NODE_READER_ONLY),
                       context={"path": BASE_PATH, "snapshot": "epoch-1"})
    try:
        node.NodeStageVolume(pinned)
        raise AssertionError("staging a snapshot that does not exist succeeded")
    except grpc.RpcError as exc:
        assert exc.code() is C.NOT_FOUND and f"{BASE_PATH}/.snapshot/epoch-1" in exc.details()
    assert not staging.exists()
    vol = create(driver)
    dyn_ctx = dict(vol.volume_context)
    dyn_ctx["path"] = "/somewhere/else"       # a context that disagrees with the id
    assert code_of(node.NodeStageVolume, stage_req(vol.volume_id, staging, context=dyn_ctx)) \
        is C.INVALID_ARGUMENT
    assert not staging.exists()
    driver.controller().DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id))


def test_publish_requires_staging(driver: DriverProcess, kubelet: Kubelet) -> None:
    vol = create(driver)
    node = driver.node()
    assert code_of(node.NodePublishVolume, publish_req(
        vol.volume_id, kubelet.staging, kubelet.target(), context=dict(vol.volume_context))) \
        is C.FAILED_PRECONDITION
    no_staging = publish_req(vol.volume_id, "", kubelet.target())
    assert code_of(node.NodePublishVolume, no_staging) is C.FAILED_PRECONDITION
    assert not os.path.exists(kubelet.target())
    driver.controller().DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id))


# -- with real mounts ------------------------------------------------------------------------------

def _sanity_node_flow(driver: DriverProcess, kubelet: Kubelet, count: int) -> None:
    """csi-sanity's "Node Service should work / should be idempotent"."""
    node = driver.node()
    vol = create(driver, unique("sanity-node-full"), required=10 * 1024**3)
    ctx = dict(vol.volume_context)
    target = kubelet.target()
    for _ in range(count):
        node.NodeStageVolume(stage_req(vol.volume_id, kubelet.staging, context=ctx))
    for _ in range(count):
        node.NodePublishVolume(publish_req(vol.volume_id, kubelet.staging, target, context=ctx))
    assert mounts.mount_state(target) is mounts.MountState.HEALTHY
    stats = node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=vol.volume_id, volume_path=target))
    assert stats.usage and stats.usage[0].total == 10 * 1024**3
    assert not stats.volume_condition.abnormal
    assert code_of(node.NodeGetVolumeStats, csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=vol.volume_id, volume_path="some/path")) is C.NOT_FOUND
    for _ in range(count):
        node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=vol.volume_id,
                                                                    target_path=target))
        assert not os.path.exists(target)       # removed: the driver created it
    for _ in range(count):
        node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
            volume_id=vol.volume_id, staging_target_path=str(kubelet.staging)))
    assert kubelet.staging.is_dir()             # existed before: kept (the CO owns it)
    assert not mounts.is_mounted(str(kubelet.staging))
    driver.controller().DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id))
    assert not list(Path(driver.state_dir, "volumes").glob("*.json"))


@needs_fuse
@pytest.mark.fuse
def test_sanity_node_flow(driver: DriverProcess, kubelet: Kubelet) -> None:
    _sanity_node_flow(driver, kubelet, 1)


@needs_fuse
@pytest.mark.fuse
def test_sanity_node_flow_idempotent(driver: DriverProcess, kubelet: Kubelet) -> None:
    _sanity_node_flow(driver, kubelet, 10)      # csi-sanity's default IdempotentCount


@needs_fuse
@pytest.mark.fuse
def test_conflicting_repeats(driver: DriverProcess, kubelet: Kubelet) -> None:
    node = driver.node()
    vol = create(driver)
    ctx = dict(vol.volume_context)
    rwx = cap(Mode.MULTI_NODE_MULTI_WRITER)
    node.NodeStageVolume(stage_req(vol.volume_id, kubelet.staging, rwx, ctx))
    # same volume, other staging path / other capability
    other = kubelet.root / "other-staging"
    other.mkdir()
    assert code_of(node.NodeStageVolume, stage_req(vol.volume_id, other, rwx, ctx)) \
        is C.FAILED_PRECONDITION
    assert code_of(node.NodeStageVolume, stage_req(vol.volume_id, kubelet.staging,
                                                   cap(Mode.SINGLE_NODE_WRITER), ctx)) \
        is C.ALREADY_EXISTS
    t1, t2 = kubelet.target("pod-a"), kubelet.target("pod-b")
    node.NodePublishVolume(publish_req(vol.volume_id, kubelet.staging, t1, rwx, context=ctx))
    # same target, different readonly flag or capability -> ALREADY_EXISTS
    assert code_of(node.NodePublishVolume, publish_req(
        vol.volume_id, kubelet.staging, t1, rwx, readonly=True, context=ctx)) is C.ALREADY_EXISTS
    assert code_of(node.NodePublishVolume, publish_req(
        vol.volume_id, kubelet.staging, t1, cap(Mode.MULTI_NODE_READER_ONLY), context=ctx)) \
        is C.ALREADY_EXISTS
    # ReadWriteOncePod: a second workload is refused while the first holds it
    assert code_of(node.NodePublishVolume, publish_req(
        vol.volume_id, kubelet.staging, t2, cap(Mode.SINGLE_NODE_SINGLE_WRITER), context=ctx)) \
        is C.FAILED_PRECONDITION
    assert not os.path.exists(t2)
    # unstage while still published is refused, and changes nothing
    assert code_of(node.NodeUnstageVolume, csi_pb2.NodeUnstageVolumeRequest(
        volume_id=vol.volume_id, staging_target_path=str(kubelet.staging))) is C.FAILED_PRECONDITION
    assert mounts.mount_state(t1) is mounts.MountState.HEALTHY
    # something else already mounted at a target
    foreign = kubelet.target("foreign")
    os.mkdir(foreign)
    os.system(f"mount -t tmpfs tmpfs {foreign}")
    try:
        assert code_of(node.NodePublishVolume, publish_req(
            vol.volume_id, kubelet.staging, foreign, rwx, context=ctx)) is C.ALREADY_EXISTS
    finally:
        mounts.unmount(foreign)
    teardown_volume(driver, vol, kubelet, [t1])


@needs_fuse
@pytest.mark.fuse
def test_static_read_only_dataset(driver: DriverProcess, kubelet: Kubelet, direct: Any) -> None:
    ds = "/datasets/" + unique("imagenet")
    files = {f"train/img-{i:03d}.jpg": os.urandom(10_000 + i) for i in range(12)}
    for rel, data in files.items():
        direct.write_file(f"{ds}/{rel}", data)
    node = driver.node()
    rox = cap(Mode.MULTI_NODE_READER_ONLY)
    ctx = {"path": ds}                           # hdfsUri defaults to --hdfs-uri
    node.NodeStageVolume(stage_req("pv-imagenet", kubelet.staging, rox, ctx))
    targets = [kubelet.target("worker-0"), kubelet.target("worker-1")]
    for t in targets:
        node.NodePublishVolume(publish_req("pv-imagenet", kubelet.staging, t, rox, readonly=True,
                                           context=ctx))
    for t in targets:
        for rel, data in files.items():
            assert Path(t, rel).read_bytes() == data
        with pytest.raises(OSError) as info:
            Path(t, "train", "new.jpg").write_bytes(b"x")
        assert info.value.errno == errno.EROFS
        assert mounts.find_mount(t).read_only  # type: ignore[union-attr]
    assert not direct.exists(f"{ds}/train/new.jpg")
    stats = node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
        volume_id="pv-imagenet", volume_path=str(kubelet.staging)))
    assert stats.usage[0].used == sum(len(d) for d in files.values())
    for t in targets:
        node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id="pv-imagenet",
                                                                    target_path=t))
    node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
        volume_id="pv-imagenet", staging_target_path=str(kubelet.staging)))
    assert direct.exists(f"{ds}/train/img-000.jpg")   # a static volume's data is never touched


@needs_fuse
@pytest.mark.fuse
def test_stats_follow_quota_and_content(driver: DriverProcess, kubelet: Kubelet) -> None:
    node = driver.node()
    vol = create(driver, required=8 * MiB)
    ctx = dict(vol.volume_context)
    node.NodeStageVolume(stage_req(vol.volume_id, kubelet.staging, context=ctx))
    target = kubelet.target()
    node.NodePublishVolume(publish_req(vol.volume_id, kubelet.staging, target, context=ctx))
    Path(target, "a.bin").write_bytes(os.urandom(300_000))
    os.mkdir(Path(target, "sub"))
    Path(target, "sub", "b.bin").write_bytes(os.urandom(200_000))
    bytes_usage = node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=vol.volume_id, volume_path=target)).usage[0]
    assert bytes_usage.unit == csi_pb2.VolumeUsage.BYTES
    assert (bytes_usage.total, bytes_usage.used) == (8 * MiB, 500_000)
    assert bytes_usage.available == 8 * MiB - 500_000
    # the quota is enforced by HDFS: more than the capacity cannot be written
    with pytest.raises(OSError):
        with open(Path(target, "too-big.bin"), "wb") as fh:
            for _ in range(12):
                fh.write(os.urandom(MiB))
    teardown_volume(driver, vol, kubelet, [target])


@needs_fuse
@pytest.mark.fuse
def test_dead_fuse_mount_is_recovered(driver: DriverProcess, kubelet: Kubelet) -> None:
    node = driver.node()
    vol = create(driver)
    ctx = dict(vol.volume_context)
    node.NodeStageVolume(stage_req(vol.volume_id, kubelet.staging, context=ctx))
    target = kubelet.target()
    node.NodePublishVolume(publish_req(vol.volume_id, kubelet.staging, target, context=ctx))
    Path(target, "before.txt").write_text("still here")
    pid_file = Path(driver.state_dir, "mounts", f"{volume_key(vol.volume_id)}.pid")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)       # the FUSE daemon dies
    deadline = time.monotonic() + 10
    while mounts.mount_state(target) is not mounts.MountState.DEAD:
        assert time.monotonic() < deadline, "mount did not go dead"
        time.sleep(0.05)
    stats = node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=vol.volume_id, volume_path=target))
    assert stats.volume_condition.abnormal
    assert "remounted" in stats.volume_condition.message
    assert Path(target, "before.txt").read_text() == "still here"
    # a second death is recovered by a repeated NodePublishVolume too (what kubelet retries)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    while mounts.mount_state(str(kubelet.staging)) is not mounts.MountState.DEAD:
        time.sleep(0.05)
    node.NodePublishVolume(publish_req(vol.volume_id, kubelet.staging, target, context=ctx))
    assert Path(target, "before.txt").read_text() == "still here"
    assert not node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=vol.volume_id, volume_path=target)).volume_condition.abnormal
    teardown_volume(driver, vol, kubelet, [target])


KERBEROS_SHIM = textwrap.dedent('''\
    """Test double for a Kerberos mount (minidfs has no KDC): record what the driver
    handed over, then mount with simple auth."""
    import json, os, stat, sys
    args = sys.argv[1:]
    if "--kerberos-keytab" in args:
        i = args.index("--kerberos-keytab")
        path = args[i + 1]
        st = os.stat(path)
        j = args.index("--kerberos-principal")
        with open({record!r}, "a") as fh:
            fh.write(json.dumps({{"path": path, "mode": stat.S_IMODE(st.st_mode),
                                 "content": open(path, "rb").read().hex(),
                                 "principal": args[j + 1]}}) + "\\n")
        args = [a for n, a in enumerate(args) if n not in (i, i + 1, j, j + 1)] + ["--user", "root"]
    os.execv(sys.executable, [sys.executable, "-m", "hdfs_csi", "mount", *args])
    ''')


@needs_fuse
@pytest.mark.fuse
def test_kerberos_keytab_lives_in_a_0600_file_until_unstage(sanity_env: SanityEnv,
                                                            kubelet: Kubelet,
                                                            tmp_path: Path) -> None:
    record = tmp_path / "shim-record.jsonl"
    shim = tmp_path / "kerberos_shim.py"
    shim.write_text(KERBEROS_SHIM.format(record=str(record)))
    # the cluster has no security: let the driver's clients fall back to SIMPLE as
    # Hadoop's do with this key (without it, a keytab for it is refused)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "core-site.xml").write_text(
        "<configuration><property><name>ipc.client.fallback-to-simple-auth-allowed</name>"
        "<value>true</value></property></configuration>")
    d = DriverProcess(tmp_path / "krb", sanity_env.uri, hadoop_conf_dir=conf, extra_args=[
        "--quota-replication", "1", "--mount-command", f"{sys.executable} {shim}"]).start()
    try:
        keytab = b"\x05\x02" + os.urandom(200)
        secret_b64 = base64.b64encode(keytab).decode()
        secrets = {"kerberosPrincipal": "trainer/node@EXAMPLE.COM", "kerberosKeytab": secret_b64}
        vol = d.controller().CreateVolume(csi_pb2.CreateVolumeRequest(
            name=unique("pvc-krb"), volume_capabilities=[cap()])).volume
        d.node().NodeStageVolume(stage_req(vol.volume_id, kubelet.staging,
                                           context=dict(vol.volume_context), secrets=secrets))
        seen = json.loads(record.read_text().splitlines()[0])
        assert seen["mode"] == 0o600 and bytes.fromhex(seen["content"]) == keytab
        assert seen["principal"] == "trainer/node@EXAMPLE.COM"
        assert Path(seen["path"]).is_relative_to(d.state_dir)
        state_text = "".join(p.read_text() for p in Path(d.state_dir, "volumes").glob("*.json"))
        assert secret_b64 not in state_text and keytab.hex() not in state_text
        d.node().NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
            volume_id=vol.volume_id, staging_target_path=str(kubelet.staging)))
        assert not Path(seen["path"]).exists()
        assert not any(Path(d.state_dir, "credentials").iterdir())
        d.controller().DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id))
        assert secret_b64 not in d.log_text()
        # a keytab for a failing stage is not left behind either
        bad = stage_req("pv-nope", kubelet.staging, context={"path": "/no/such/dir"},
                        secrets=secrets)
        assert code_of(d.node().NodeStageVolume, bad) is C.NOT_FOUND
        assert not any(Path(d.state_dir, "credentials").iterdir())
        assert stat.S_IMODE(Path(d.state_dir, "credentials").stat().st_mode) == 0o700
    finally:
        d.stop()


@needs_fuse
@pytest.mark.fuse
def test_inline_ephemeral_volume(driver: DriverProcess, kubelet: Kubelet, direct: Any) -> None:
    """kubelet publishes inline (CSI ephemeral) volumes without staging them."""
    ds = "/datasets/" + unique("inline")
    direct.write_file(f"{ds}/part-0", b"inline data")
    node = driver.node()
    target = kubelet.target("inline")
    ctx = {"path": ds, "metadataTtl": "60s",
           "csi.storage.k8s.io/ephemeral": "true",          # what kubelet adds
           "csi.storage.k8s.io/pod.name": "dataset-peek",
           "csi.storage.k8s.io/pod.namespace": "default"}
    vol_id = "csi-" + unique("inline")
    req = csi_pb2.NodePublishVolumeRequest(
        volume_id=vol_id, target_path=target, volume_capability=cap(Mode.SINGLE_NODE_WRITER),
        readonly=True, volume_context=ctx, secrets={"user": "root"})
    for _ in range(2):
        node.NodePublishVolume(req)
    assert Path(target, "part-0").read_bytes() == b"inline data"
    assert mounts.find_mount(target).fstype.startswith("fuse")   # type: ignore[union-attr]
    with pytest.raises(OSError) as info:
        Path(target, "x").write_bytes(b"x")
    assert info.value.errno == errno.EROFS
    stats = node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(volume_id=vol_id,
                                                                      volume_path=target))
    assert stats.usage[0].used == len(b"inline data")
    other = dict(req.volume_context)
    other["path"] = "/datasets"
    assert code_of(node.NodePublishVolume, csi_pb2.NodePublishVolumeRequest(
        volume_id=vol_id, target_path=target, volume_capability=cap(Mode.SINGLE_NODE_WRITER),
        readonly=True, volume_context=other)) is C.ALREADY_EXISTS
    for _ in range(2):
        node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=vol_id,
                                                                    target_path=target))
    assert not os.path.exists(target)
    assert not mounts.is_mounted(target)
    assert not list(Path(driver.state_dir, "volumes").glob("*.json"))
