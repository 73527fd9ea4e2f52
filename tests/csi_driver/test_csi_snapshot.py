"""Static dataset volumes pinned to an HDFS snapshot, end to end.

A dataset is written to ``/datasets/ds`` and snapshotted as ``epoch1``; then
the live tree changes (one file overwritten, one appended to, one deleted,
one added).  A static volume with ``{path: /datasets/ds, snapshot: epoch1}``
is staged and published through the real driver (unix socket), real FUSE
and real bind mounts, and must show exactly epoch1's bytes and listing,
refuse every write with EROFS, report stats, and leave nothing behind.

Writer capabilities: the CSI spec says of NodeStage/NodePublish's
``volume_capability`` "SP MUST ensure the CO can use the ... volume as
described. Otherwise SP MUST return the appropriate gRPC error code", and
the driver already refuses writer modes for read-only volumes at CreateVolume
(INVALID_ARGUMENT) and ValidateVolumeCapabilities (not confirmed).  So a
pinned volume staged with a writer access mode, or published with one and
``readonly=false``, is INVALID_ARGUMENT, never a silently read-only mount.
A writer mode with ``readonly=true`` at publish (what kubelet sends for
inline volumes and for ``readOnly`` pod mounts) is a read-only use and works.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from csi_kit import Kubelet, Mode, cap, code_of, needs_fuse
from sanity_kit import DriverProcess, SanityEnv, mounts_below

from csi_driver.state import volume_key
from fuse_mount import mounts
from hdfs_client import connect
from hdfs_client.admin_rpc import AdminRpcClient
from hdfs_csi_pb import csi_pb2

pytestmark = pytest.mark.timeout(120)

C = grpc.StatusCode
MiB = 1024**2
DS = "/datasets/ds"
PINNED = {"path": DS, "snapshot": "epoch1"}
EPHEMERAL = "csi.storage.k8s.io/ephemeral"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def dataset(sanity_env: SanityEnv) -> Iterator[dict[str, Any]]:
    """epoch1 and live contents of /datasets/ds as {relative path: sha256}."""
    client = connect(sanity_env.uri)
    admin = AdminRpcClient(sanity_env.uri)
    try:
        big = os.urandom(2 * MiB + 512 * 1024)         # 3 blocks of the 1 MiB block size
        epoch1 = {"a.txt": b"alpha version one\n", "big.bin": big,
                  "log.txt": b"line 1\n", "sub/c.txt": b"c" * 5000}
        for rel, data in epoch1.items():
            client.write_file(f"{DS}/{rel}", data)
        admin.allow_snapshot(DS)
        assert admin.create_snapshot(DS, "epoch1") == f"{DS}/.snapshot/epoch1"
        # the producer keeps going after the snapshot
        client.write_file(f"{DS}/a.txt", b"alpha version TWO, longer\n", overwrite=True)
        tail = os.urandom(300_000)
        with client.append(f"{DS}/big.bin") as w:
            w.write(tail)
        client.delete(f"{DS}/sub/c.txt")
        client.write_file(f"{DS}/new.txt", b"added after epoch1")
        live = {"a.txt": b"alpha version TWO, longer\n", "big.bin": big + tail,
                "log.txt": b"line 1\n", "new.txt": b"added after epoch1"}
        assert client.read_file(f"{DS}/big.bin") == big + tail
        yield {"epoch1": {k: sha(v) for k, v in epoch1.items()},
               "epoch1_bytes": sum(len(v) for v in epoch1.values()),
               "live": {k: sha(v) for k, v in live.items()},
               "client": client}
    finally:
        admin.close()
        client.close()


def tree(root: str | Path) -> dict[str, str]:
    """{relative path: sha256} of every file, {relative dir: "dir"} of every directory."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel_dir, d))] = "dir"
        for f in filenames:
            h = hashlib.sha256()
            with open(os.path.join(dirpath, f), "rb") as fh:
                for chunk in iter(lambda: fh.read(MiB), b""):
                    h.update(chunk)
            out[os.path.normpath(os.path.join(rel_dir, f))] = h.hexdigest()
    return out


def with_dirs(files: dict[str, str]) -> dict[str, str]:
    out = dict(files)
    for rel in files:
        parent = os.path.dirname(rel)
        while parent:
            out[parent] = "dir"
            parent = os.path.dirname(parent)
    return out


def stage_req(vol_id: str, staging: str | Path, capability: Any,
              context: dict[str, str]) -> Any:
    return csi_pb2.NodeStageVolumeRequest(volume_id=vol_id, staging_target_path=str(staging),
                                          volume_capability=capability, volume_context=context)


def publish_req(vol_id: str, staging: str | Path | None, target: str, capability: Any,
                readonly: bool, context: dict[str, str]) -> Any:
    return csi_pb2.NodePublishVolumeRequest(
        volume_id=vol_id, staging_target_path=str(staging) if staging else "",
        target_path=target, volume_capability=capability, readonly=readonly,
        volume_context=context)


def unpublish(driver: DriverProcess, vol_id: str, target: str) -> None:
    driver.node().NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(
        volume_id=vol_id, target_path=target), timeout=60)


def unstage(driver: DriverProcess, vol_id: str, staging: str | Path) -> None:
    driver.node().NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
        volume_id=vol_id, staging_target_path=str(staging)), timeout=60)


def expect(call: Callable[..., Any], request: Any, code: grpc.StatusCode,
           *fragments: str) -> None:
    try:
        call(request, timeout=60)
    except grpc.RpcError as exc:
        assert exc.code() is code, exc.details()
        for f in fragments:
            assert f in exc.details(), exc.details()
        return
    raise AssertionError(f"expected {code.name}, the call succeeded")


def assert_erofs(root: str | Path) -> None:
    """Every kind of write through ``root`` fails with EROFS."""
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("create", lambda: Path(root, "x.txt").write_bytes(b"x")),
        ("overwrite", lambda: open(Path(root, "a.txt"), "r+b").close()),
        ("append", lambda: open(Path(root, "log.txt"), "ab").close()),
        ("truncate", lambda: os.truncate(Path(root, "a.txt"), 0)),
        ("unlink", lambda: os.unlink(Path(root, "a.txt"))),
        ("mkdir", lambda: os.mkdir(Path(root, "newdir"))),
        ("rmdir", lambda: os.rmdir(Path(root, "sub"))),
        ("rename", lambda: os.rename(Path(root, "a.txt"), Path(root, "b.txt"))),
        ("chmod", lambda: os.chmod(Path(root, "a.txt"), 0o777)),
    ]
    for what, attempt in attempts:
        with pytest.raises(OSError) as info:
            attempt()
        assert info.value.errno == errno.EROFS, (what, info.value)


def assert_nothing_left(driver: DriverProcess, k: Kubelet, *volume_ids: str) -> None:
    """No mount below the test's kubelet dirs; no state, pid or log file of the volumes."""
    assert not mounts_below(k.root)
    for vol_id in volume_ids:
        key = volume_key(vol_id)
        assert not Path(driver.state_dir, "volumes", f"{key}.json").exists(), vol_id
        assert not list(Path(driver.state_dir, "mounts").glob(f"{key}.*")), vol_id


@needs_fuse
@pytest.mark.fuse
def test_pinned_volume_shows_epoch1_only(driver: DriverProcess, kubelet: Kubelet,
                                         dataset: dict[str, Any]) -> None:
    node = driver.node()
    rox = cap(Mode.MULTI_NODE_READER_ONLY)
    staging = kubelet.staging
    # the attributes of deploy/examples/static-pv-dataset.yaml: data cache, long metadata TTL
    ctx = {**PINNED, "readOnly": "true", "metadataTtl": "10m", "cacheSize": "64Mi",
           "readAheadMax": "2Mi"}
    for _ in range(2):                                 # the CO retries
        node.NodeStageVolume(stage_req("pv-ds-epoch1", staging, rox, ctx), timeout=60)
    # the same volume pinned to another epoch is another volume
    expect(node.NodeStageVolume, stage_req("pv-ds-epoch1", staging, rox,
                                           {**ctx, "snapshot": "epoch0"}), C.ALREADY_EXISTS)
    t_rox = kubelet.target("reader")
    # what kubelet sends for a readOnly pod mount of a volume whose PV lists a writer mode
    t_ro_flag = kubelet.target("writer-mode-readonly")
    node.NodePublishVolume(publish_req("pv-ds-epoch1", staging, t_rox, rox, True, ctx),
                           timeout=60)
    node.NodePublishVolume(publish_req("pv-ds-epoch1", staging, t_ro_flag,
                                       cap(Mode.MULTI_NODE_MULTI_WRITER), True, ctx),
                           timeout=60)
    # a writer mode without readonly: the CO means to write, which a snapshot cannot take
    t_rw = kubelet.target("writer")
    expect(node.NodePublishVolume, publish_req("pv-ds-epoch1", staging, t_rw,
                                               cap(Mode.MULTI_NODE_MULTI_WRITER), False, ctx),
           C.INVALID_ARGUMENT, "snapshot", "read-only")
    assert not os.path.exists(t_rw)

    expected = with_dirs(dataset["epoch1"])
    for root in (str(staging), t_rox, t_ro_flag, t_rox):   # t_rox twice: warm cache
        assert tree(root) == expected, root             # epoch1 bytes and listing, nothing else
        assert sorted(os.listdir(root)) == ["a.txt", "big.bin", "log.txt", "sub"]
        assert os.stat(Path(root, "big.bin")).st_size == 2 * MiB + 512 * 1024
        with open(Path(root, "big.bin"), "rb") as fh:  # a read across a block boundary
            fh.seek(MiB - 100)
            assert len(fh.read(200)) == 200
        assert not os.path.exists(Path(root, "new.txt"))
        assert_erofs(root)
        assert mounts.find_mount(root).read_only       # type: ignore[union-attr]
    assert dataset["client"].read_file(f"{DS}/a.txt") == b"alpha version TWO, longer\n"
    assert not dataset["client"].exists(f"{DS}/x.txt")

    # a second volume on the same directory without `snapshot` sees the live data
    # (and what it writes does not show in the pinned one)
    live_staging = kubelet.root / "staging-live"
    live_staging.mkdir()
    live_target = kubelet.target("live")
    rwx = cap(Mode.MULTI_NODE_MULTI_WRITER)
    live_ctx = {"path": DS}
    node.NodeStageVolume(stage_req("pv-ds-live", live_staging, rwx, live_ctx), timeout=60)
    node.NodePublishVolume(publish_req("pv-ds-live", live_staging, live_target, rwx, False,
                                       live_ctx), timeout=60)
    assert tree(live_target) == {**with_dirs(dataset["live"]), "sub": "dir"}  # sub/ is now empty
    Path(live_target, "written-live.txt").write_bytes(b"live write")
    assert dataset["client"].read_file(f"{DS}/written-live.txt") == b"live write"
    assert tree(t_rox) == expected

    stats = node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
        volume_id="pv-ds-epoch1", volume_path=t_rox), timeout=60)
    usage = {u.unit: u for u in stats.usage}
    assert usage[csi_pb2.VolumeUsage.BYTES].used == dataset["epoch1_bytes"]  # not the live size
    assert usage[csi_pb2.VolumeUsage.BYTES].total >= dataset["epoch1_bytes"]
    assert not stats.volume_condition.abnormal, stats.volume_condition.message

    # the FUSE daemon dies: stats report it and remount the same snapshot, read-only
    pid_file = Path(driver.state_dir, "mounts", f"{volume_key('pv-ds-epoch1')}.pid")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while mounts.mount_state(t_rox) is not mounts.MountState.DEAD:
        assert time.monotonic() < deadline, "mount did not go dead"
        time.sleep(0.05)
    stats = node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
        volume_id="pv-ds-epoch1", volume_path=t_rox), timeout=60)
    assert stats.volume_condition.abnormal and "remounted" in stats.volume_condition.message
    for root in (str(staging), t_rox, t_ro_flag):
        assert tree(root) == expected, root
        assert mounts.find_mount(root).read_only      # type: ignore[union-attr]
    assert_erofs(t_rox)

    for vol_id, target in (("pv-ds-epoch1", t_rox),
                           ("pv-ds-epoch1", t_ro_flag),
                           ("pv-ds-live", live_target)):
        for _ in range(2):
            unpublish(driver, vol_id, target)
        assert not os.path.exists(target)
    for _ in range(2):
        unstage(driver, "pv-ds-epoch1", staging)
        unstage(driver, "pv-ds-live", live_staging)
    assert staging.is_dir() and not os.listdir(staging)    # the CO's directory is kept
    dataset["client"].delete(f"{DS}/written-live.txt")
    assert_nothing_left(driver, kubelet, "pv-ds-epoch1", "pv-ds-live")


def test_writer_access_mode_at_stage_is_refused(driver: DriverProcess, kubelet: Kubelet,
                                                dataset: dict[str, Any]) -> None:
    staging = kubelet.root / "not-yet"                  # the driver would create it
    for mode in (Mode.MULTI_NODE_MULTI_WRITER, Mode.SINGLE_NODE_WRITER,
                 Mode.SINGLE_NODE_SINGLE_WRITER):
        expect(driver.node().NodeStageVolume, stage_req("pv-ds-w", staging, cap(mode), PINNED),
               C.INVALID_ARGUMENT, "snapshot", "read-only")
    # a .snapshot path is pinned just the same
    expect(driver.node().NodeStageVolume,
           stage_req("pv-ds-w", staging, cap(Mode.SINGLE_NODE_WRITER),
                     {"path": f"{DS}/.snapshot/epoch1"}),
           C.INVALID_ARGUMENT, "read-only")
    assert not staging.exists()
    assert_nothing_left(driver, kubelet, "pv-ds-w")
    # the controller agrees: a writer mode is not confirmed for a pinned volume
    ctl = driver.controller()
    for mode, confirmed in ((Mode.MULTI_NODE_READER_ONLY, True),
                            (Mode.MULTI_NODE_MULTI_WRITER, False)):
        resp = ctl.ValidateVolumeCapabilities(csi_pb2.ValidateVolumeCapabilitiesRequest(
            volume_id="pv-ds-w", volume_context=PINNED, volume_capabilities=[cap(mode)]),
            timeout=60)
        assert resp.HasField("confirmed") is confirmed, resp.message


@needs_fuse
@pytest.mark.fuse
def test_writer_mode_with_ro_mount_flag_stages(driver: DriverProcess, kubelet: Kubelet,
                                               dataset: dict[str, Any]) -> None:
    """PV ``mountOptions: [ro]`` on a ReadWriteOnce PV: a reader-only use, accepted."""
    node = driver.node()
    rwo_ro = cap(Mode.SINGLE_NODE_WRITER, flags=("ro",))
    node.NodeStageVolume(stage_req("pv-ds-ro", kubelet.staging, rwo_ro, PINNED), timeout=60)
    target = kubelet.target()
    node.NodePublishVolume(publish_req("pv-ds-ro", kubelet.staging, target, rwo_ro, False,
                                       PINNED), timeout=60)
    assert Path(target, "log.txt").read_bytes() == b"line 1\n"
    assert_erofs(target)
    unpublish(driver, "pv-ds-ro", target)
    unstage(driver, "pv-ds-ro", kubelet.staging)
    assert_nothing_left(driver, kubelet, "pv-ds-ro")


@needs_fuse
@pytest.mark.fuse
def test_inline_pinned_volume(driver: DriverProcess, kubelet: Kubelet,
                              dataset: dict[str, Any]) -> None:
    """kubelet publishes inline volumes with SINGLE_NODE_WRITER and the pod's readOnly."""
    node = driver.node()
    target = kubelet.target("inline")
    ctx = {**PINNED, EPHEMERAL: "true"}
    rwo = cap(Mode.SINGLE_NODE_WRITER)
    expect(node.NodePublishVolume, publish_req("csi-inline-ds", None, target, rwo, False, ctx),
           C.INVALID_ARGUMENT, "read-only")
    assert not os.path.exists(target)
    node.NodePublishVolume(publish_req("csi-inline-ds", None, target, rwo, True, ctx), timeout=60)
    assert tree(target) == with_dirs(dataset["epoch1"])
    assert_erofs(target)
    for _ in range(2):
        unpublish(driver, "csi-inline-ds", target)
    assert not os.path.exists(target)
    assert_nothing_left(driver, kubelet, "csi-inline-ds")


def test_missing_snapshot_is_not_found(driver: DriverProcess, kubelet: Kubelet,
                                       dataset: dict[str, Any]) -> None:
    node = driver.node()
    rox = cap(Mode.MULTI_NODE_READER_ONLY)
    missing = {"path": DS, "snapshot": "epoch2"}
    for staging in (kubelet.staging, kubelet.root / "not-yet"):
        expect(node.NodeStageVolume, stage_req("pv-ds-epoch2", staging, rox, missing),
               C.NOT_FOUND, f"{DS}/.snapshot/epoch2")
    assert not (kubelet.root / "not-yet").exists()
    assert kubelet.staging.is_dir() and not os.listdir(kubelet.staging)
    target = kubelet.target("inline")
    expect(node.NodePublishVolume, publish_req("csi-inline-missing", None, target, rox, True,
                                               {**missing, EPHEMERAL: "true"}), C.NOT_FOUND)
    assert not os.path.exists(target)
    # and a publish of a volume that never staged changes nothing either
    expect(node.NodePublishVolume, publish_req("pv-ds-epoch2", kubelet.staging, target, rox,
                                               True, missing), C.FAILED_PRECONDITION)
    assert not os.path.exists(target)
    assert_nothing_left(driver, kubelet, "pv-ds-epoch2", "csi-inline-missing")


@pytest.mark.parametrize("name", ["..", ".", "a/b", "ep\x00och", "x" * 256, ".snapshot", ""],
                         ids=["dotdot", "dot", "slash", "nul", "too-long", "dotsnapshot", "empty"])
def test_invalid_snapshot_names(driver: DriverProcess, kubelet: Kubelet, name: str) -> None:
    node = driver.node()
    rox = cap(Mode.MULTI_NODE_READER_ONLY)
    ctx = {"path": DS, "snapshot": name}
    staging = kubelet.root / "not-yet"
    target = kubelet.target()
    assert code_of(node.NodeStageVolume, stage_req("pv-bad", staging, rox, ctx)) \
        is C.INVALID_ARGUMENT
    assert code_of(node.NodePublishVolume, publish_req(
        "csi-inline-bad", None, target, rox, True, {**ctx, EPHEMERAL: "true"})) \
        is C.INVALID_ARGUMENT
    assert code_of(driver.controller().ValidateVolumeCapabilities,
                   csi_pb2.ValidateVolumeCapabilitiesRequest(
                       volume_id="pv-bad", volume_context=ctx, volume_capabilities=[rox])) \
        is C.INVALID_ARGUMENT
    assert not staging.exists() and not os.path.exists(target)
    assert_nothing_left(driver, kubelet, "pv-bad", "csi-inline-bad")
