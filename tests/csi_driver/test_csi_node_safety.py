"""The node never mounts outside its place and never trusts what a request names (issue 13).

Each test here is an attack (or an operator's mistake) that once worked:

* racing a symlink against NodePublishVolume / NodeStageVolume so the mount
  lands outside the kubelet directory, and unmounting through a swapped
  parent so the driver removes a mount that is not its own (item 4);
* nesting a new volume inside another volume's FUSE tree through a symlinked
  parent, or inside a hdfs-csi mount the driver does not know about (item 5);
* staging a crafted ``v1:`` id outside the base path, inside the driver's own
  ``.hdfs-csi`` directory, or on a cluster the driver was never told about
  (item 6);
* a StorageClass ``basePath`` inside a tenant volume or inside ``.hdfs-csi``
  (item 7);
* a Kerberos principal that the mount command would read as an option (item 8).

Real parts throughout: minidfs, ``hdfs-csi driver`` over its unix socket,
real FUSE and bind mounts, a real TCP listener standing in for "another
cluster".  The driver of this module runs with ``--kubelet-dir`` set to one
directory, so "outside the kubelet directory" is a directory next to it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from csi_kit import Mode, cap, code_of, needs_fuse, unique
from sanity_kit import BASE_PATH, DriverProcess, SanityEnv, unmount_below

from fuse_mount import mounts
from hdfs_csi_pb import csi_pb2

pytestmark = pytest.mark.timeout(300)

C = grpc.StatusCode
MiB = 1024**2


# -- the world: a kubelet directory, an "outside", and a driver confined to the first ---------

class World:
    def __init__(self, root: Path, driver: DriverProcess, dfs_uri: str):
        self.root = root
        self.kubelet = root / "kubelet"
        self.outside = root / "outside"
        self.driver = driver
        self.dfs_uri = dfs_uri

    def case(self) -> "Case":
        return Case(self, unique("case"))


class Case:
    """One test's directories, laid out as kubelet lays them out."""

    def __init__(self, world: World, name: str):
        self.world = world
        self.base = world.kubelet / name
        self.staging_parent = self.base / "plugins" / "globalmount-parent"
        self.staging = self.staging_parent / "globalmount"
        self.pod = self.base / "pods" / "pod-a" / "volumes"
        self.outside = world.outside / name
        for d in (self.staging_parent, self.pod, self.outside):
            d.mkdir(parents=True)

    def target(self, name: str = "mount") -> Path:
        return self.pod / name


@pytest.fixture(scope="module")
def world(sanity_env: SanityEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("node-safety")
    (root / "kubelet").mkdir()
    (root / "outside").mkdir()
    driver = DriverProcess(root / "driver", sanity_env.uri, node_id="safety-node",
                           extra_args=["--quota-replication", "1",
                                       "--kubelet-dir", str(root / "kubelet")]).start()
    try:
        yield World(root, driver, sanity_env.uri)
    finally:
        driver.stop()
        left = unmount_below(root)
        assert not left, f"mounts left behind: {left}"


@pytest.fixture
def direct(sanity_env: SanityEnv) -> Iterator[Any]:
    from hdfs_client import connect

    client = connect(sanity_env.uri)
    try:
        yield client
    finally:
        client.close()


def create(driver: DriverProcess, params: dict[str, str] | None = None) -> Any:
    return driver.controller().CreateVolume(csi_pb2.CreateVolumeRequest(
        name=unique("pvc-safety"), volume_capabilities=[cap()], parameters=params or {},
        capacity_range=csi_pb2.CapacityRange(required_bytes=64 * MiB)), timeout=60).volume


def stage_req(vol_id: str, staging: Path | str, context: dict[str, str] | None = None,
              secrets: dict[str, str] | None = None, capability: Any = None) -> Any:
    return csi_pb2.NodeStageVolumeRequest(
        volume_id=vol_id, staging_target_path=str(staging),
        volume_capability=capability if capability is not None else cap(),
        volume_context=context or {}, secrets=secrets or {})


def publish_req(vol_id: str, staging: Path | str, target: Path | str,
                context: dict[str, str] | None = None, readonly: bool = False) -> Any:
    return csi_pb2.NodePublishVolumeRequest(
        volume_id=vol_id, staging_target_path=str(staging), target_path=str(target),
        volume_capability=cap(), readonly=readonly, volume_context=context or {})


def unpublish(driver: DriverProcess, vol_id: str, target: Path | str) -> None:
    driver.node().NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(
        volume_id=vol_id, target_path=str(target)), timeout=60)


def unstage(driver: DriverProcess, vol_id: str, staging: Path | str) -> None:
    driver.node().NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
        volume_id=vol_id, staging_target_path=str(staging)), timeout=60)


def delete(driver: DriverProcess, vol_id: str) -> None:
    driver.controller().DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vol_id), timeout=60)


def details(fn: Any, req: Any, timeout: float = 60) -> tuple[grpc.StatusCode, str]:
    try:
        fn(req, timeout=timeout)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return C.OK, ""


def mounts_at_or_below(path: Path) -> list[str]:
    p = str(path)
    return [e.mountpoint for e in mounts.mount_table()
            if e.mountpoint == p or e.mountpoint.startswith(p + "/")]


def mounts_of_dev(dev: str) -> list[str]:
    return [e.mountpoint for e in mounts.mount_table() if e.dev == dev]


class MountWatch:
    """Reads /proc/self/mountinfo in a loop and records any mount at or below ``where``.

    Checking only after each call would miss a foreign mount that the driver
    makes and removes again within the call; this sees most of those too.
    """

    def __init__(self, where: Path):
        self.where = where
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mount-watch", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.update(mounts_at_or_below(self.where))
            time.sleep(0.001)

    def __enter__(self) -> "MountWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seen.update(mounts_at_or_below(self.where))


FLIP_LOOP = """
import os, random, sys, time
p, to, count_file, dwell = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
flips = 0
try:
    while True:
        for op in (lambda: os.rmdir(p), lambda: os.symlink(to, p), lambda: os.unlink(p),
                   lambda: os.mkdir(p)):
            try:
                op()
            except OSError:
                pass
            if dwell:
                time.sleep(random.random() * dwell)
        flips += 1
        if flips % 16 == 0:
            with open(count_file, "w") as fh:
                fh.write(str(flips))
except KeyboardInterrupt:
    pass
"""


class Flipper:
    """Flips ``path`` between an empty directory and a symlink to ``to`` as fast as it can.

    A separate process, so the attacker does not share the test's GIL and runs flat out;
    ``dwell`` (seconds) holds each state for a random time up to that long, for callers
    (libfuse) that give up at the first inconsistent view rather than losing the race.
    """

    def __init__(self, path: Path, to: Path, dwell: float = 0.0):
        self.path = path
        self.to = to
        self.dwell = dwell
        self.count_file = path.parent / f".flips-{uuid.uuid4().hex[:6]}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def flips(self) -> int:
        try:
            return int(self.count_file.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def __enter__(self) -> "Flipper":
        self.proc = subprocess.Popen([sys.executable, "-c", FLIP_LOOP, str(self.path),
                                      str(self.to), str(self.count_file), str(self.dwell)])
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        if self.path.is_symlink():
            self.path.unlink()
        with contextlib.suppress(OSError):
            self.count_file.unlink()


# -- item 4: the mount lands where kubelet asked, whatever happens to the path ---------------

@needs_fuse
@pytest.mark.fuse
def test_publish_raced_by_a_symlink_never_mounts_outside(world: World) -> None:
    """150 read-write publishes while another process flips the target between an empty
    directory and a symlink to a directory outside the kubelet directory: flat out for
    half of them, holding each state up to 2 ms for the other half (so more publishes
    get as far as the mount).  Nothing is ever mounted outside, a successful publish is
    mounted at the target, and every unpublish leaves nothing of the volume behind."""
    d, case = world.driver, world.case()
    vol = create(d)
    ctx = dict(vol.volume_context)
    d.node().NodeStageVolume(stage_req(vol.volume_id, case.staging, ctx), timeout=60)
    dev = mounts.find_mount(str(case.staging)).dev    # type: ignore[union-attr]
    # the helper mounted in the state directory; only the copy at the staging path is left
    assert mounts_of_dev(dev) == [str(case.staging)]
    target = case.target()
    published = failed = flips = 0
    stray: list[str] = []
    odd: list[str] = []
    deadline = time.monotonic() + 120
    # Each phase goes on until it has done its publishes *and* the attacker has had its
    # flips: on a loaded 2-core CI machine the attacker can be starved for a while, and a
    # fixed count of publishes then tested almost nothing (a CI run counted 768 flips).
    wanted_flips = {0.0: 1500, 0.002: 150}
    try:
        with MountWatch(case.outside) as watch:
            for dwell, want in wanted_flips.items():
                with Flipper(target, case.outside, dwell=dwell) as flipper:
                    tries = 0
                    while tries < 75 or flipper.flips < want:
                        if time.monotonic() > deadline or stray or tries >= 2000:
                            break
                        tries += 1
                        code, msg = details(d.node().NodePublishVolume,
                                            publish_req(vol.volume_id, case.staging, target, ctx))
                        if code not in (C.OK, C.FAILED_PRECONDITION, C.INVALID_ARGUMENT):
                            odd.append(f"{code.name}: {msg}")
                        if code is C.OK:
                            published += 1
                            entry = mounts.find_mount(str(target))
                            assert entry is not None and entry.dev == dev
                        else:
                            failed += 1
                        unpublish(d, vol.volume_id, target)
                        # whatever the publish did, the unpublish took it away again
                        stray += [m for m in mounts_of_dev(dev) if m != str(case.staging)]
                    flips += flipper.flips
    finally:
        # a failed assertion above must not leave the staged mount to the next test
        unpublish(d, vol.volume_id, target)
        unstage(d, vol.volume_id, case.staging)
    assert flips > 1000, f"the attacker hardly ran: {flips} flips before the deadline"
    assert not watch.seen, f"mounted outside the kubelet directory: {sorted(watch.seen)}"
    assert not stray, f"left mounted after NodeUnpublishVolume: {stray}"
    assert not odd, f"losing the race is refused, not an internal error: {odd[:3]}"
    assert published + failed >= 50 and published >= 1
    assert not list(case.outside.iterdir())
    delete(d, vol.volume_id)
    assert mounts_of_dev(dev) == []


@needs_fuse
@pytest.mark.fuse
def test_stage_raced_by_a_symlink_never_mounts_outside(world: World) -> None:
    """The same race against NodeStageVolume (the FUSE mount itself)."""
    d, case = world.driver, world.case()
    vol = create(d)
    ctx = dict(vol.volume_context)
    staged = 0
    left: list[str] = []
    deadline = time.monotonic() + 90
    try:
        with MountWatch(case.outside) as watch, Flipper(case.staging, case.outside, dwell=0.02):
            for _ in range(20):
                if time.monotonic() > deadline:
                    break
                code, _msg = details(d.node().NodeStageVolume,
                                     stage_req(vol.volume_id, case.staging, ctx), timeout=20)
                assert code in (C.OK, C.FAILED_PRECONDITION, C.INTERNAL,
                                C.DEADLINE_EXCEEDED), code
                staged += code is C.OK
                if watch.seen:
                    break
                unstage(d, vol.volume_id, case.staging)
                left = mounts_at_or_below(case.staging_parent)
                if left:
                    break
    finally:
        unmount_below(case.outside)
    assert not watch.seen, f"FUSE-mounted outside the kubelet directory: {sorted(watch.seen)}"
    assert not left, f"left mounted after NodeUnstageVolume: {left}"
    unstage(d, vol.volume_id, case.staging)
    delete(d, vol.volume_id)


@needs_fuse
@pytest.mark.fuse
def test_unmounts_never_follow_a_swapped_parent(world: World) -> None:
    """The pod directory is swapped for a symlink to another pod's directory, which has a
    mount of its own (a memory emptyDir) where ours is: NodeUnpublishVolume must not
    remove that mount, and must not report success while its own bind mount stays
    behind.  The same for the staging path and NodeUnstageVolume."""
    d, case = world.driver, world.case()
    vol = create(d)
    ctx = dict(vol.volume_context)
    node = d.node()
    node.NodeStageVolume(stage_req(vol.volume_id, case.staging, ctx), timeout=60)
    target = case.target()
    node.NodePublishVolume(publish_req(vol.volume_id, case.staging, target, ctx), timeout=60)
    other_pod = case.base / "pods" / "pod-b" / "volumes"
    other_mount = other_pod / "mount"
    other_mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "emptydir", str(other_mount)],
                   check=True)
    moved = case.pod.with_name("volumes-moved")
    other_driver = case.base / "plugins" / "other-driver"
    other_gm = other_driver / "globalmount"
    staging_moved = case.staging_parent.with_name("moved")
    try:
        case.pod.rename(moved)                       # our bind mount moves along with it
        case.pod.symlink_to(other_pod)
        code, msg = details(node.NodeUnpublishVolume, csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=vol.volume_id, target_path=str(target)))
        assert mounts.find_mount(str(other_mount)) is not None, \
            "NodeUnpublishVolume unmounted another pod's mount"
        assert other_mount.is_dir()
        assert code is not C.OK or not mounts.is_mounted(str(moved / "mount")), \
            "NodeUnpublishVolume reported success but its bind mount is still there"
        case.pod.unlink()
        moved.rename(case.pod)
        unpublish(d, vol.volume_id, target)
        assert not mounts.is_mounted(str(target))
        # the same for the staging path
        other_gm.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "other", str(other_gm)],
                       check=True)
        case.staging_parent.rename(staging_moved)
        case.staging_parent.symlink_to(other_driver)
        code, msg = details(node.NodeUnstageVolume, csi_pb2.NodeUnstageVolumeRequest(
            volume_id=vol.volume_id, staging_target_path=str(case.staging)))
        assert mounts.find_mount(str(other_gm)) is not None, \
            "NodeUnstageVolume unmounted a mount that is not its own"
        assert code is not C.OK or not mounts.is_mounted(str(staging_moved / "globalmount")), \
            "NodeUnstageVolume reported success but its FUSE mount is still there"
        case.staging_parent.unlink()
        staging_moved.rename(case.staging_parent)
        unstage(d, vol.volume_id, case.staging)
        assert sorted(mounts_at_or_below(case.base)) == sorted([str(other_mount), str(other_gm)])
    finally:
        for link, real in ((case.pod, moved), (case.staging_parent, staging_moved)):
            if link.is_symlink():
                link.unlink()
                real.rename(link)
        unmount_below(case.base)
    delete(d, vol.volume_id)


# -- item 5: no volume inside another volume, whatever the path says --------------------------

@needs_fuse
@pytest.mark.fuse
def test_no_nesting_through_a_symlinked_parent(world: World, direct: Any) -> None:
    d, case = world.driver, world.case()
    node = d.node()
    a, b = create(d), create(d)
    a_ctx, b_ctx = dict(a.volume_context), dict(b.volume_context)
    node.NodeStageVolume(stage_req(a.volume_id, case.staging, a_ctx), timeout=60)
    (case.staging / "sub").mkdir()                  # a directory inside volume A
    link = case.base / "plugins" / "b-parent"
    link.symlink_to(case.staging / "sub")           # ...reached through a symlink
    code, _ = details(node.NodeStageVolume, stage_req(b.volume_id, link / "globalmount", b_ctx))
    assert code is C.INVALID_ARGUMENT
    b_staging = case.base / "plugins" / "b-globalmount"
    node.NodeStageVolume(stage_req(b.volume_id, b_staging, b_ctx), timeout=60)
    code, _ = details(node.NodePublishVolume, publish_req(b.volume_id, b_staging,
                                                          link / "target", b_ctx))
    assert code is C.INVALID_ARGUMENT
    assert list(direct.list_dir(f"{a_ctx['path']}/sub")) == [], "created inside another volume"
    assert not mounts_at_or_below(case.staging / "sub")
    for vid, staging in ((b.volume_id, b_staging), (a.volume_id, case.staging)):
        unstage(d, vid, staging)
        delete(d, vid)


@needs_fuse
@pytest.mark.fuse
def test_no_nesting_inside_a_hdfs_mount_the_driver_did_not_make(
        world: World, direct: Any) -> None:
    """The nesting check looks at what the path is (its mounts), not at strings the
    driver happens to have recorded."""
    d, case = world.driver, world.case()
    other = "/safety-other-" + uuid.uuid4().hex[:8]
    direct.mkdirs(other + "/sub")
    mnt = case.base / "someone-elses-mount"
    mnt.mkdir()
    subprocess.run([sys.executable, "-m", "hdfs_csi", "mount", f"{world.dfs_uri}{other}",
                    str(mnt), "--pid-file", str(case.base / "other.pid"),
                    "--log-file", str(case.base / "other.log")], check=True, timeout=60)
    try:
        vol = create(d)
        ctx = dict(vol.volume_context)
        code, _ = details(d.node().NodeStageVolume,
                          stage_req(vol.volume_id, mnt / "sub" / "globalmount", ctx))
        assert code is C.INVALID_ARGUMENT
        assert list(direct.list_dir(f"{other}/sub")) == []
        delete(d, vol.volume_id)
    finally:
        mounts.unmount(str(mnt))


# -- item 6: the node checks the volume id as the controller does -----------------------------

class Listener:
    """A TCP socket that counts connections: "another cluster"."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@needs_fuse
@pytest.mark.fuse
def test_node_refuses_ids_outside_the_base_path(world: World, direct: Any) -> None:
    d, case = world.driver, world.case()
    uri = world.dfs_uri
    outside = f"/safety-outside-{uuid.uuid4().hex[:8]}/pvc-crafted"
    direct.mkdirs(outside)
    create(d)                                   # makes sure the records directory exists
    for vid in (f"v1:{uri}{outside}",
                f"v1:{uri}{BASE_PATH}/.hdfs-csi/volumes",          # the driver's records
                f"v1:{uri}{BASE_PATH}/.hdfs-csi/archive/pvc-gone"):
        code, msg = details(d.node().NodeStageVolume, stage_req(vid, case.staging))
        assert code is C.INVALID_ARGUMENT, (vid, code, msg)
        assert not mounts_at_or_below(case.staging_parent)
        code, _ = details(d.node().NodePublishVolume, csi_pb2.NodePublishVolumeRequest(
            volume_id=vid, target_path=str(case.target()), volume_capability=cap(),
            volume_context={"path": "/datasets", "csi.storage.k8s.io/ephemeral": "true"}))
        assert code is C.INVALID_ARGUMENT
    assert not mounts_at_or_below(case.base)


@needs_fuse
@pytest.mark.fuse
def test_node_and_controller_refuse_clusters_they_were_not_given(world: World,
                                                                 direct: Any) -> None:
    d, case = world.driver, world.case()
    listener = Listener()
    try:
        evil = f"hdfs://127.0.0.1:{listener.port}"
        requests = [
            (d.node().NodeStageVolume, stage_req(f"v1:{evil}{BASE_PATH}/pvc-x", case.staging)),
            (d.node().NodeStageVolume, stage_req("pv-static-evil", case.staging,
                                                 {"hdfsUri": evil, "path": "/datasets"},
                                                 capability=cap(Mode.MULTI_NODE_READER_ONLY))),
            (d.node().NodePublishVolume, csi_pb2.NodePublishVolumeRequest(
                volume_id="inline-evil", target_path=str(case.target()), volume_capability=cap(),
                volume_context={"hdfsUri": evil, "path": "/datasets",
                                "csi.storage.k8s.io/ephemeral": "true"})),
            (d.controller().CreateVolume, csi_pb2.CreateVolumeRequest(
                name=unique("pvc-evil"), volume_capabilities=[cap()],
                parameters={"hdfsUri": evil})),
            (d.controller().DeleteVolume, csi_pb2.DeleteVolumeRequest(
                volume_id=f"v1:{evil}{BASE_PATH}/pvc-x")),
            (d.controller().ValidateVolumeCapabilities,
             csi_pb2.ValidateVolumeCapabilitiesRequest(
                 volume_id="pv-static-evil", volume_capabilities=[cap()],
                 volume_context={"hdfsUri": evil, "path": "/datasets"})),
        ]
        for fn, req in requests:
            code, msg = details(fn, req, timeout=30)
            assert code in (C.INVALID_ARGUMENT, C.PERMISSION_DENIED), (type(req).__name__, code,
                                                                       msg)
        assert listener.accepted == 0, "the driver connected to a cluster it was never given"
    finally:
        listener.close()
    assert not mounts_at_or_below(case.base)


@needs_fuse
@pytest.mark.fuse
def test_static_volumes_work_on_allowed_clusters(sanity_env: SanityEnv, world: World,
                                                 direct: Any, tmp_path: Path) -> None:
    """A static PV outside the base path, naming its cluster explicitly, still mounts; a
    second spelling of a cluster works once ``--allowed-hdfs-uri`` names it."""
    ds = "/datasets/" + unique("safety")
    direct.write_file(f"{ds}/part-0", b"static bytes")
    port = sanity_env.uri.rsplit(":", 1)[1]
    alias = f"hdfs://localhost:{port}"
    case = world.case()
    rox = cap(Mode.MULTI_NODE_READER_ONLY)
    node = world.driver.node()
    ctx = {"hdfsUri": world.dfs_uri, "path": ds}
    node.NodeStageVolume(stage_req("pv-static-ok", case.staging, ctx, capability=rox), timeout=60)
    assert (case.staging / "part-0").read_bytes() == b"static bytes"
    unstage(world.driver, "pv-static-ok", case.staging)
    alias_ctx = {"hdfsUri": alias, "path": ds}
    assert code_of(node.NodeStageVolume, stage_req("pv-alias", case.staging, alias_ctx,
                                                   capability=rox)) is C.INVALID_ARGUMENT
    d2 = DriverProcess(tmp_path / "d2", sanity_env.uri, node_id="safety-2", extra_args=[
        "--quota-replication", "1", "--kubelet-dir", str(world.kubelet),
        "--allowed-hdfs-uri", alias]).start()
    try:
        d2.node().NodeStageVolume(stage_req("pv-alias", case.staging, alias_ctx,
                                            capability=rox), timeout=60)
        assert (case.staging / "part-0").read_bytes() == b"static bytes"
        unstage(d2, "pv-alias", case.staging)
    finally:
        d2.stop()
    assert not mounts_at_or_below(case.base)


# -- item 7: a StorageClass basePath never nests tenants ---------------------------------------

def test_create_refuses_a_base_path_inside_a_volume_or_the_metadata(world: World,
                                                                    direct: Any) -> None:
    d = world.driver
    tenant = create(d)
    tenant_path = tenant.volume_context["path"]
    for base in (tenant_path, f"{tenant_path}/nested", f"{BASE_PATH}/.hdfs-csi",
                 f"{BASE_PATH}/.hdfs-csi/archive", f"{BASE_PATH}/x/.hdfs-csi/y"):
        before = list(direct.list_dir(tenant_path))
        code, msg = details(d.controller().CreateVolume, csi_pb2.CreateVolumeRequest(
            name=unique("pvc-nested"), volume_capabilities=[cap()],
            parameters={"basePath": base}))
        assert code is C.INVALID_ARGUMENT, (base, code, msg)
        assert list(direct.list_dir(tenant_path)) == before
    assert not direct.exists(f"{BASE_PATH}/x")
    # a base path next to the volumes (not inside one) is still fine
    ok = create(d, {"basePath": f"{BASE_PATH}/team-a"})
    assert ok.volume_context["path"].startswith(f"{BASE_PATH}/team-a/")
    delete(d, ok.volume_id)
    delete(d, tenant.volume_id)


# -- item 8: nothing a request carries is read as a mount option -----------------------------

@needs_fuse
@pytest.mark.fuse
def test_principals_are_kerberos_names_never_options(world: World) -> None:
    d, case = world.driver, world.case()
    vol = create(d)
    keytab = base64.b64encode(b"\x05\x02" + os.urandom(64)).decode()
    for principal in ("-h", "--help", "-x@EXAMPLE.COM", "--kerberos-keytab=/etc/shadow",
                      "alice@-EXAMPLE", "alice/-host@EXAMPLE.COM", ".alice@EXAMPLE.COM",
                      "alice@@EXAMPLE.COM", "alice//x@EXAMPLE.COM"):
        code, msg = details(d.node().NodeStageVolume, stage_req(
            vol.volume_id, case.staging, dict(vol.volume_context),
            secrets={"kerberosPrincipal": principal, "kerberosKeytab": keytab}))
        assert code is C.INVALID_ARGUMENT, (principal, code, msg)
        assert "usage" not in msg.lower()
        assert len(principal) < 4 or principal not in msg     # secrets are never echoed
    assert not mounts_at_or_below(case.base)
    delete(d, vol.volume_id)


# -- the pieces, on real (tmpfs) mounts ------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with a file in it: a mount to bind around."""
    src = tmp_path / "src"
    src.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "h3src", str(src)], check=True)
    (src / "f").write_text("tmpfs data")
    try:
        yield src
    finally:
        unmount_below(tmp_path)


@needs_root
@pytest.mark.parametrize("new_api", [True, False], ids=["open_tree", "mount-on-fd"])
def test_attach_lands_on_the_walked_directory(tmpfs: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              new_api: bool) -> None:
    """Both ways of mounting (the new mount API, and mount(2) onto /proc/self/fd/N for
    kernels without it) mount where the walk says, read-only from the start when asked,
    refuse symlinks and replaced targets, and unmount only through the walked parent."""
    from csi_driver import anchored
    from csi_driver.errors import FailedPrecondition, InvalidArgument

    monkeypatch.setattr(anchored, "_NEW_API", new_api)
    root = tmp_path / "kubelet"
    (root / "pods").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    local = anchored.Anchor((str(root),))
    src_fd = os.open(tmpfs, os.O_PATH | os.O_DIRECTORY)
    try:
        for ro in (False, True):
            target = root / "pods" / f"t-{ro}"
            assert local.make_dir(str(target), "target") is True
            local.attach(src_fd, str(target), read_only=ro)
            entry = mounts.find_mount(str(target))
            assert entry is not None and entry.read_only is ro
            assert (target / "f").read_text() == "tmpfs data"
            assert local.state(str(target)) is mounts.MountState.HEALTHY
            with pytest.raises(FailedPrecondition):      # something is mounted there already
                local.attach(src_fd, str(target), read_only=False)
            local.unmount(str(target))
            assert local.state(str(target)) is mounts.MountState.ABSENT
            local.remove_dir(str(target))
            assert not target.exists()
        link = root / "pods" / "link"
        link.symlink_to(outside)
        with pytest.raises(FailedPrecondition):          # the leaf is a symlink
            local.attach(src_fd, str(link), read_only=False)
        with pytest.raises(InvalidArgument):             # a parent is a symlink
            local.make_dir(str(link / "x"), "target")
        with pytest.raises(InvalidArgument):
            local.unmount(str(link / "x"))
        assert not mounts_at_or_below(outside)
        with pytest.raises(InvalidArgument):             # not below the root at all
            local.walk(str(outside / "x"))
    finally:
        os.close(src_fd)


@needs_root
def test_a_mount_that_did_not_land_at_the_path_is_taken_back(tmpfs: Path,
                                                             tmp_path: Path) -> None:
    """What happens when the target directory is renamed away between the walk and the
    mount: the check after the mount does not find the new mount at the path, detaches
    it where it landed, and fails.  Both ways of mounting."""
    from csi_driver import anchored
    from csi_driver.errors import FailedPrecondition

    root = tmp_path / "kubelet"
    root.mkdir()
    local = anchored.Anchor((str(root),))
    src_fd = os.open(tmpfs, os.O_PATH | os.O_DIRECTORY)
    try:
        # new API: the mount is attached at a, but the path said b
        (root / "a").mkdir()
        (root / "b").mkdir()
        tree = anchored._open_tree_clone(src_fd)
        try:
            with local.walk(str(root / "a")) as w:
                anchored._move_mount(tree, w.parent, w.name)
            assert mounts.is_mounted(str(root / "a"))
            with pytest.raises(FailedPrecondition):
                local._verify(str(root / "b"), tree)
            assert not mounts.is_mounted(str(root / "a"))
        finally:
            os.close(tree)
        # mount(2) onto the walked descriptor, after the directory moved to c
        with local.walk(str(root / "b")) as w:
            assert w.leaf is not None
            os.rename(root / "b", root / "c")
            (root / "b").mkdir()
            anchored._mount(anchored._fd_path(src_fd), anchored._fd_path(w.leaf),
                            anchored.MS_BIND)
            assert mounts.is_mounted(str(root / "c"))
            with pytest.raises(FailedPrecondition):
                local._verify_legacy(w, src_fd)
        assert not mounts.is_mounted(str(root / "c"))
        assert not mounts.is_mounted(str(root / "b"))
    finally:
        os.close(src_fd)


def test_mount_command_values_can_never_be_options() -> None:
    from csi_driver.errors import InvalidArgument
    from csi_driver.mounter import FuseMountSpec

    ok = FuseMountSpec("hdfs://nn:8020/v", "/state/fuse/k", True, ("--cache-size", "1024"),
                       ("--kerberos-principal", "alice@EXAMPLE.COM", "--kerberos-keytab", "/k"),
                       pid_file="/state/p.pid")
    assert ok.command_args() == ["hdfs://nn:8020/v", "/state/fuse/k", "--read-only",
                                 "--cache-size", "1024", "--kerberos-principal",
                                 "alice@EXAMPLE.COM", "--kerberos-keytab", "/k",
                                 "--pid-file", "/state/p.pid"]
    for identity in (("--kerberos-principal", "-h"), ("--user", "--help"), ("--user", "")):
        bad = FuseMountSpec("hdfs://nn:8020/v", "/m", False, identity_args=identity)
        with pytest.raises(InvalidArgument) as info:
            bad.command_args()
        assert identity[1] == "" or identity[1] not in str(info.value)


def test_allowed_clusters_come_from_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    from csi_driver import cli, scope
    from csi_driver.errors import InvalidArgument
    from csi_driver.volumes import decode_volume_id

    monkeypatch.setenv("HDFS_ALLOWED_URIS", "hdfs://b:8020, viewfs://c/")
    args = cli.build_parser().parse_args([
        "--node-id", "n", "--endpoint", "unix:///tmp/x.sock", "--hdfs-uri", "hdfs://a:8020/",
        "--base-path", "/k8s/volumes", "--allowed-hdfs-uri", "hdfs://d"])
    cfg = cli.config_from_args(args)
    assert cfg.allowed_clusters == ("hdfs://a:8020", "hdfs://b:8020", "viewfs://c", "hdfs://d")
    for ok in ("hdfs://a:8020", "viewfs://c", "hdfs://d"):
        scope.check_cluster(cfg, ok)
    for bad in ("hdfs://a", "hdfs://A:8020", "hdfs://evil:8020"):
        with pytest.raises(InvalidArgument):
            scope.check_cluster(cfg, bad)
    scope.check_dynamic(cfg, decode_volume_id("v1:hdfs://d/k8s/volumes/pvc-1"))
    for vid in ("v1:hdfs://d/elsewhere/pvc-1", "v1:hdfs://evil/k8s/volumes/pvc-1",
                "v1:hdfs://d/k8s/volumes/.hdfs-csi/volumes",
                "v1:hdfs://d/k8s/volumes/.hdfs-csi/archive/pvc-1"):
        with pytest.raises(InvalidArgument):
            scope.check_dynamic(cfg, decode_volume_id(vid))
    with pytest.raises(ValueError):
        cli.config_from_args(cli.build_parser().parse_args([
            "--node-id", "n", "--endpoint", "unix:///tmp/x.sock",
            "--base-path", "/k8s/.hdfs-csi/volumes"]))
