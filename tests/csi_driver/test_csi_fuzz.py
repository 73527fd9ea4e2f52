"""Random requests against the live server change nothing they must not.

Hypothesis generates CSI requests from a mix of valid values (a real volume,
the kubelet directories) and hostile ones: ``..`` escapes, absolute paths
outside the kubelet directories, NUL and control bytes, over-long strings,
unknown parameters, forged volume ids that point at data outside the base
path, bogus capabilities.  After every request we check the invariants:

* no RPC fails with UNKNOWN or INTERNAL (those are bugs, not answers);
* nothing is mounted anywhere except the two kubelet paths the test owns;
* no file or directory appears outside them (canary paths stay absent);
* HDFS outside the base path is byte-for-byte unchanged, and so is a
  directory inside the base path that the driver did not create.

``max_examples`` is modest (and derandomized, so the default run is
reproducible) in the default tier; ``-m slow`` runs many more random ones.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from csi_kit import cap, needs_fuse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sanity_kit import BASE_PATH, DriverProcess, SanityEnv, mounts_below, unmount_below

from fuse_mount import mounts
from hdfs_csi_pb import csi_pb2

pytestmark = [needs_fuse, pytest.mark.fuse]

ALLOWED_CODES = {
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.PERMISSION_DENIED,
    # an id naming a cluster that cannot be reached (the fuzzer invents some)
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
}
CANARY = "fuzz-canary-" + uuid.uuid4().hex[:8]


class FuzzWorld:
    def __init__(self, root: Path, driver: DriverProcess, direct: Any):
        self.root = root
        self.driver = driver
        self.direct = direct
        self.staging = root / "staging"
        self.targets = root / "pods"
        self.staging.mkdir()
        self.targets.mkdir()
        self.canaries = [Path("/") / CANARY, Path("/tmp") / CANARY, root.parent / CANARY,
                         root / CANARY, Path("/var") / CANARY]
        # kubelet gives the staging path and targets *inside* the pods directory; a
        # request naming any such entry (even an odd name) is a kubelet-given path
        self.allowed_entries = {self.staging, self.targets}
        # HDFS: data outside the base path, and a directory inside it the driver never created
        direct.mkdirs("/precious/deep")
        direct.write_file("/precious/deep/file", b"do not touch")
        direct.mkdirs(f"{BASE_PATH}/not-a-volume")
        direct.write_file(f"{BASE_PATH}/not-a-volume/data", b"nor this")
        direct.mkdirs("/datasets/fuzz")
        direct.write_file("/datasets/fuzz/sample", b"dataset")
        vol = driver.controller().CreateVolume(csi_pb2.CreateVolumeRequest(
            name="pvc-fuzz-real", volume_capabilities=[cap()])).volume
        self.real_id = vol.volume_id
        self.real_context = dict(vol.volume_context)
        self.real_path = self.real_context["path"]
        self.hdfs_before = self.hdfs_snapshot()

    def hdfs_snapshot(self) -> dict[str, tuple[bool, int, int, int]]:
        """Every path outside the base path (plus the foreign directory inside it)."""
        out: dict[str, tuple[bool, int, int, int]] = {}
        stack = ["/"]
        while stack:
            path = stack.pop()
            for s in self.direct.list_dir(path):
                if s.path.startswith(BASE_PATH + "/") and not s.path.startswith(
                        f"{BASE_PATH}/not-a-volume"):
                    continue
                quota = -1
                if s.is_dir:
                    stack.append(s.path)
                    quota = self.direct.content_summary(s.path).space_quota
                out[s.path] = (s.is_dir, s.length, s.permission, quota)
        return out

    def reset(self) -> None:
        """Undo, through the driver, whatever the last example staged or published.

        Each example starts from the same state, so a failure replays and shrinks.
        """
        node = self.driver.node()
        for f in Path(self.driver.state_dir, "volumes").glob("*.json"):
            rec = json.loads(f.read_text())
            for t in rec["targets"]:
                node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(
                    volume_id=rec["volume_id"], target_path=t), timeout=60)
            node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
                volume_id=rec["volume_id"], staging_target_path=rec["staging_path"]), timeout=60)
        assert not mounts_below(self.root), "reset through the driver left mounts behind"
        for entry in self.targets.iterdir():
            entry.rmdir()            # a target the driver did not create (kubelet's job)
        if not self.direct.exists(self.real_path):   # an example deleted the real volume
            self.driver.controller().CreateVolume(csi_pb2.CreateVolumeRequest(
                name="pvc-fuzz-real", volume_capabilities=[cap()]), timeout=60)

    def allowed(self, path: Path) -> bool:
        return path in self.allowed_entries or path.parent == self.targets

    def check(self) -> None:
        stray = [e.mountpoint for e in mounts.mount_table()
                 if CANARY in e.mountpoint or (e.mountpoint.startswith(str(self.root) + "/")
                                               and not self.allowed(Path(e.mountpoint)))]
        assert not stray, f"mounted outside the kubelet paths: {stray}"
        for c in self.canaries:
            assert not os.path.lexists(c), f"created outside the kubelet paths: {c}"
        mounted = {e.mountpoint for e in mounts.mount_table()}
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath in mounted:
                dirnames[:] = []          # inside a mount: the volume's data, not ours to judge
                continue
            for name in dirnames + filenames:
                p = Path(dirpath, name)
                assert self.allowed(p), f"unexpected entry {p}"
        after = self.hdfs_snapshot()
        assert after == self.hdfs_before, "HDFS outside the base path changed"


@pytest.fixture(scope="module")
def world(sanity_env: SanityEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzWorld]:
    from hdfs_client import connect

    root = tmp_path_factory.mktemp("fuzz")
    driver = DriverProcess(root.parent / (root.name + "-driver"), sanity_env.uri,
                           node_id="fuzz-node",
                           extra_args=["--quota-replication", "1", "--default-capacity", "64Mi",
                                       "--kubelet-dir", str(root)]).start()
    direct = connect(sanity_env.uri)
    try:
        w = FuzzWorld(root, driver, direct)
        try:
            yield w
        finally:
            w.reset()
    finally:
        driver.stop()
        left = unmount_below(root)
        direct.close()
        assert not left, f"mounts left behind: {left}"


def _quiet(fn: Any, req: Any) -> None:
    try:
        fn(req, timeout=60)
    except grpc.RpcError:
        pass


# -- strategies ------------------------------------------------------------------------------------

nasty_text = st.text(alphabet=st.sampled_from(list("ab./-_:~ \x00\x01\n\u00e9\u2603")), max_size=24)
long_text = st.sampled_from(["a" * 129, "/" + "b" * 5000, "x/" * 3000, "\u2603" * 200])


def local_paths(w: FuzzWorld) -> st.SearchStrategy[str]:
    r = str(w.root)
    return st.one_of(
        st.sampled_from([str(w.staging), str(w.targets / "t1"), str(w.targets / "t2"), ""]),
        st.sampled_from([f"{r}/../{CANARY}", f"/{CANARY}", f"/tmp/{CANARY}", f"{CANARY}/rel",
                         f"{w.staging}/../../{CANARY}", f"{w.targets}/t1/../../../{CANARY}",
                         f"{r}/{CANARY}/deeper/x", "/", "/proc/self", "/etc",
                         f"{w.staging}/\x00{CANARY}", f"/var/{CANARY}"]),
        nasty_text.map(lambda s: f"{w.targets}/{s}"),
        long_text, nasty_text)


def volume_ids(w: FuzzWorld) -> st.SearchStrategy[str]:
    uri = w.driver.hdfs_uri
    return st.one_of(
        st.sampled_from([w.real_id, "pv-static", "fake-vol-id", "", "v1:",
                         f"v1:{uri}/precious", f"v1:{uri}/precious/deep",
                         f"v1:{uri}{BASE_PATH}/not-a-volume", f"v1:{uri}{BASE_PATH}/../precious/x",
                         f"v1:{uri}//precious/deep", f"v1:hdfs://evil:1{BASE_PATH}/x",
                         f"v1:{uri}{BASE_PATH}/.hdfs-csi", f"v1:{uri}/", f"v1:{uri}{BASE_PATH}"]),
        nasty_text, long_text, nasty_text.map(lambda s: f"v1:{uri}{BASE_PATH}/{s}"))


def string_maps(keys: list[str],
                values: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.one_of(st.sampled_from(keys), nasty_text), values, max_size=4)


hdfs_paths = st.one_of(st.sampled_from(["/datasets/fuzz", "/precious", "/", "/precious/../etc",
                                        "../x", "/datasets/fuzz/../../precious", f"{BASE_PATH}"]),
                       nasty_text)
contexts = st.one_of(
    string_maps(["path", "hdfsUri", "snapshot", "readOnly", "cacheSize", "metadataTtl",
                 "csi.storage.k8s.io/pod.name"], st.one_of(hdfs_paths, nasty_text)),
    # inline (ephemeral) volumes: kubelet publishes them without staging
    st.fixed_dictionaries({"path": hdfs_paths,
                           "csi.storage.k8s.io/ephemeral":
                               st.sampled_from(["true", "false", "TRUE"])}))
parameters = string_maps(["basePath", "hdfsUri", "owner", "mode", "onDelete", "cacheSize",
                          "csi.storage.k8s.io/pvc/name"], st.one_of(hdfs_paths, nasty_text))
secrets = string_maps(["user", "kerberosPrincipal", "kerberosKeytab"], nasty_text)


@st.composite
def capabilities(draw: Any) -> Any:
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    mode = draw(st.integers(0, 9))
    kind = draw(st.sampled_from(["mount", "block", "none"]))
    flags = draw(st.lists(st.sampled_from(["ro", "noatime", "uid=0", "rw", "x" * 50]), max_size=2))
    c = csi_pb2.VolumeCapability(access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode))
    if kind == "mount":
        c.mount.CopyFrom(csi_pb2.VolumeCapability.MountVolume(
            mount_flags=flags, fs_type=draw(st.sampled_from(["", "ext4", "hdfs"]))))
    elif kind == "block":
        c.block.CopyFrom(csi_pb2.VolumeCapability.BlockVolume())
    return c


def _opt(field: str, value: Any) -> dict[str, Any]:
    return {} if value is None else {field: value}


@st.composite
def requests(draw: Any, w: FuzzWorld) -> tuple[Any, Any]:
    node, ctl = w.driver.node(), w.driver.controller()
    rpc = draw(st.sampled_from(["stage", "unstage", "publish", "unpublish", "stats", "create",
                                "delete", "expand", "validate"]))
    vid = draw(volume_ids(w))
    ctx = draw(st.one_of(st.just(w.real_context), contexts))
    c = draw(capabilities())
    if rpc == "stage":
        return node.NodeStageVolume, csi_pb2.NodeStageVolumeRequest(
            volume_id=vid, staging_target_path=draw(local_paths(w)), volume_context=ctx,
            secrets=draw(secrets), **_opt("volume_capability", c))
    if rpc == "unstage":
        return node.NodeUnstageVolume, csi_pb2.NodeUnstageVolumeRequest(
            volume_id=vid, staging_target_path=draw(local_paths(w)))
    if rpc == "publish":
        return node.NodePublishVolume, csi_pb2.NodePublishVolumeRequest(
            volume_id=vid, staging_target_path=draw(local_paths(w)),
            target_path=draw(local_paths(w)), readonly=draw(st.booleans()), volume_context=ctx,
            secrets=draw(secrets), **_opt("volume_capability", c))
    if rpc == "unpublish":
        return node.NodeUnpublishVolume, csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=vid, target_path=draw(local_paths(w)))
    if rpc == "stats":
        return node.NodeGetVolumeStats, csi_pb2.NodeGetVolumeStatsRequest(
            volume_id=vid, volume_path=draw(local_paths(w)))
    if rpc == "create":
        return ctl.CreateVolume, csi_pb2.CreateVolumeRequest(
            name=draw(st.one_of(nasty_text, long_text,
                                st.sampled_from(["pvc-fuzz-real", "not-a-volume"]))),
            volume_capabilities=[c] if c is not None else [], parameters=draw(parameters),
            secrets=draw(secrets),
            capacity_range=csi_pb2.CapacityRange(required_bytes=draw(st.integers(-5, 2**40)),
                                                 limit_bytes=draw(st.integers(-5, 2**40))))
    if rpc == "delete":
        return ctl.DeleteVolume, csi_pb2.DeleteVolumeRequest(volume_id=vid, secrets=draw(secrets))
    if rpc == "expand":
        return ctl.ControllerExpandVolume, csi_pb2.ControllerExpandVolumeRequest(
            volume_id=vid, secrets=draw(secrets),
            capacity_range=csi_pb2.CapacityRange(required_bytes=draw(st.integers(-5, 2**40))))
    return ctl.ValidateVolumeCapabilities, csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=vid, volume_context=ctx, parameters=draw(parameters),
        volume_capabilities=[c] if c is not None else [])


@st.composite
def near_valid(draw: Any, w: FuzzWorld) -> tuple[Any, Any]:
    """A request that would succeed, with at most one field replaced by a hostile value.

    Without these, random requests almost never get past validation and the
    mounting code paths would go unfuzzed.
    """
    node = w.driver.node()
    vid = w.real_id
    staging = str(w.staging)
    target = str(w.targets / draw(st.sampled_from(["t1", "t2"])))
    good_cap = cap(draw(st.sampled_from([5, 5, 5, 3, 1])))
    ctx = dict(w.real_context)
    rpc = draw(st.sampled_from(["stage", "stage", "publish", "publish", "unpublish", "unstage",
                                "stats", "inline"]))
    mutate = draw(st.sampled_from(["none", "none", "volume_id", "path", "target", "context",
                                   "capability"]))
    if mutate == "volume_id":
        vid = draw(volume_ids(w))
    elif mutate == "path":
        staging = draw(local_paths(w))
    elif mutate == "target":
        target = draw(local_paths(w))
    elif mutate == "context":
        ctx = draw(contexts)
    elif mutate == "capability":
        good_cap = draw(capabilities())
    if rpc == "stage":
        return node.NodeStageVolume, csi_pb2.NodeStageVolumeRequest(
            volume_id=vid, staging_target_path=staging, volume_context=ctx,
            **_opt("volume_capability", good_cap))
    if rpc == "inline":
        inline_ctx = {"path": "/datasets/fuzz", "csi.storage.k8s.io/ephemeral": "true"}
        if mutate == "context":
            inline_ctx = ctx
        return node.NodePublishVolume, csi_pb2.NodePublishVolumeRequest(
            volume_id="csi-inline" if mutate != "volume_id" else vid, target_path=target,
            volume_context=inline_ctx, **_opt("volume_capability", good_cap))
    if rpc == "publish":
        return node.NodePublishVolume, csi_pb2.NodePublishVolumeRequest(
            volume_id=vid, staging_target_path=staging, target_path=target, volume_context=ctx,
            readonly=draw(st.booleans()), **_opt("volume_capability", good_cap))
    if rpc == "unpublish":
        return node.NodeUnpublishVolume, csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=vid, target_path=target)
    if rpc == "unstage":
        return node.NodeUnstageVolume, csi_pb2.NodeUnstageVolumeRequest(
            volume_id=vid, staging_target_path=staging)
    return node.NodeGetVolumeStats, csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=vid, volume_path=draw(st.sampled_from([staging, target])))


def _run(world: FuzzWorld, data: Any, seen: dict[str, int]) -> None:
    """One example: a short sequence of requests (so stage can precede publish)."""
    world.reset()
    steps = data.draw(st.lists(st.one_of(requests(world), near_valid(world), near_valid(world)),
                               min_size=1, max_size=4))
    for fn, req in steps:
        try:
            fn(req, timeout=60)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
            assert code in ALLOWED_CODES, f"{code}: {exc.details()} for {req}"
        key = f"{type(req).__name__}:{code.name}"
        seen[key] = seen.get(key, 0) + 1
        world.check()


def _fuzz(world: FuzzWorld, examples: int, derandomize: bool) -> None:
    """Run ``examples`` random request sequences, then check that the near-valid ones
    mounted something at least once, or the invariants above checked little (in the
    same test: no state shared with another test)."""
    seen: dict[str, int] = {}

    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def fuzz(data: Any) -> None:
        _run(world, data, seen)

    fuzz()
    assert seen.get("NodeStageVolumeRequest:OK", 0) >= 1, seen
    assert seen.get("NodePublishVolumeRequest:OK", 0) >= 1, seen


@pytest.mark.timeout(600)
def test_random_requests_change_nothing_outside_the_allowed_places(world: FuzzWorld) -> None:
    _fuzz(world, 100, derandomize=True)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_random_requests_many(world: FuzzWorld) -> None:
    _fuzz(world, 1000, derandomize=False)
