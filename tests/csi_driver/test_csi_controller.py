"""Conformance of the Identity and Controller services, from the CSI spec and csi-sanity.

Everything runs against ``hdfs-csi driver --mode all`` over its unix socket,
with minidfs (a subprocess) as the cluster: the shape an independent suite
uses.  The driver runs with ``--quota-replication 1`` because minidfs has
one DataNode, so a volume's space quota equals its capacity.
"""

from __future__ import annotations

import concurrent.futures
import posixpath
import signal
from typing import Any

import grpc
import pytest
from csi_kit import Mode, cap, code_of, unique
from sanity_kit import BASE_PATH, DriverProcess, SanityEnv

from hdfs_csi_pb import csi_pb2

pytestmark = pytest.mark.timeout(120)

GiB = 1024**3
C = grpc.StatusCode
CtlRPC = csi_pb2.ControllerServiceCapability.RPC


def create(driver: DriverProcess, name: str, *, required: int = 0, limit: int = 0,
           params: dict[str, str] | None = None, caps: list[Any] | None = None) -> Any:
    req = csi_pb2.CreateVolumeRequest(name=name, volume_capabilities=caps or [cap()],
                                      parameters=params or {})
    if required or limit:
        req.capacity_range.required_bytes = required
        req.capacity_range.limit_bytes = limit
    return driver.controller().CreateVolume(req, timeout=60).volume


def delete(driver: DriverProcess, volume_id: str) -> None:
    driver.controller().DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume_id), timeout=60)


def vol_path(volume: Any) -> str:
    return volume.volume_context["path"]


# -- Identity -----------------------------------------------------------------------------------

def test_identity(driver: DriverProcess) -> None:
    info = driver.identity().GetPluginInfo(csi_pb2.GetPluginInfoRequest())
    assert info.name == "hdfs.csi.hdfs-csi.io" and len(info.name) <= 63
    assert info.vendor_version
    caps = driver.identity().GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest())
    services = {c.service.type for c in caps.capabilities if c.HasField("service")}
    expansion = {c.volume_expansion.type for c in caps.capabilities
                 if c.HasField("volume_expansion")}
    assert services == {csi_pb2.PluginCapability.Service.CONTROLLER_SERVICE}
    assert expansion == {csi_pb2.PluginCapability.VolumeExpansion.ONLINE}
    probe = driver.identity().Probe(csi_pb2.ProbeRequest())
    assert probe.HasField("ready") and probe.ready.value


def test_controller_capabilities_and_unoffered_rpcs(driver: DriverProcess) -> None:
    caps = driver.controller().ControllerGetCapabilities(
        csi_pb2.ControllerGetCapabilitiesRequest()).capabilities
    assert {c.rpc.type for c in caps} == {CtlRPC.CREATE_DELETE_VOLUME, CtlRPC.GET_CAPACITY,
                                          CtlRPC.EXPAND_VOLUME}
    ctl = driver.controller()
    # not advertised, so UNIMPLEMENTED (csi-sanity skips these; a CO must not retry)
    assert code_of(ctl.ListVolumes, csi_pb2.ListVolumesRequest()) is C.UNIMPLEMENTED
    assert code_of(ctl.ControllerPublishVolume, csi_pb2.ControllerPublishVolumeRequest(
        volume_id="x", node_id="n", volume_capability=cap())) is C.UNIMPLEMENTED
    assert code_of(ctl.CreateSnapshot, csi_pb2.CreateSnapshotRequest(
        name="s", source_volume_id="x")) is C.UNIMPLEMENTED
    # ...with a reason, not the generated base class's bare "Method not implemented!"
    with pytest.raises(grpc.RpcError) as err:
        ctl.ControllerPublishVolume(csi_pb2.ControllerPublishVolumeRequest(
            volume_id="x", node_id="n", volume_capability=cap()))
    assert "HDFS needs no attach step" in (err.value.details() or "")


# -- CreateVolume -------------------------------------------------------------------------------

def test_create_without_parameters_or_secrets(driver: DriverProcess, direct: Any) -> None:
    name = unique("pvc")
    vol = create(driver, name, required=10 * GiB)
    assert vol.capacity_bytes == 10 * GiB
    assert vol.volume_id == f"v1:{driver.hdfs_uri}{BASE_PATH}/{name}"
    assert len(vol.volume_id.encode()) <= 128
    assert vol.volume_context["path"] == f"{BASE_PATH}/{name}"
    assert vol.volume_context["hdfsUri"] == driver.hdfs_uri
    summary = direct.content_summary(f"{BASE_PATH}/{name}")
    assert summary.space_quota == 10 * GiB          # --quota-replication 1
    status = direct.get_status(f"{BASE_PATH}/{name}")
    assert status.is_dir and status.permission == 0o755
    delete(driver, vol.volume_id)
    assert not direct.exists(f"{BASE_PATH}/{name}")


def test_create_is_idempotent_and_detects_incompatible_repeats(driver: DriverProcess) -> None:
    name = unique("sanity-controller-create-twice")
    first = create(driver, name, required=GiB, limit=GiB)
    again = create(driver, name, required=GiB, limit=GiB)
    assert again.volume_id == first.volume_id and again.capacity_bytes == GiB
    assert dict(again.volume_context) == dict(first.volume_context)
    # any compatible range is fine: the volume's 1 GiB is within [0.5 GiB, 2 GiB]
    assert create(driver, name, required=GiB // 2, limit=2 * GiB).volume_id == first.volume_id
    ctl = driver.controller()
    different_capacity = csi_pb2.CreateVolumeRequest(
        name=name, volume_capabilities=[cap()],
        capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GiB, limit_bytes=2 * GiB))
    assert code_of(ctl.CreateVolume, different_capacity) is C.ALREADY_EXISTS
    different_params = csi_pb2.CreateVolumeRequest(
        name=name, volume_capabilities=[cap()], parameters={"mode": "0700"},
        capacity_range=csi_pb2.CapacityRange(required_bytes=GiB))
    assert code_of(ctl.CreateVolume, different_params) is C.ALREADY_EXISTS
    delete(driver, first.volume_id)


def test_capacity_defaults(driver: DriverProcess, direct: Any) -> None:
    no_range = create(driver, unique("pvc-default"))
    assert no_range.capacity_bytes == GiB           # --default-capacity 1Gi
    limit_only = create(driver, unique("pvc-limit"), limit=300 * 1024**2)
    assert limit_only.capacity_bytes == 300 * 1024**2
    assert direct.content_summary(vol_path(limit_only)).space_quota == 300 * 1024**2
    for v in (no_range, limit_only):
        delete(driver, v.volume_id)


def test_max_length_and_odd_names_map_to_safe_directories(driver: DriverProcess,
                                                          direct: Any) -> None:
    long_name = ("sanity-controller-create-maxlen-" + "x" * 128)[:128]
    odd = ["../../../etc/passwd", "a/b", "ümlaut ☃", long_name]
    for name in odd:
        vol = create(driver, name, required=GiB)
        path = vol_path(vol)
        assert posixpath.dirname(path) == BASE_PATH
        assert posixpath.basename(path).startswith("_")
        assert direct.exists(path)
        assert create(driver, name, required=GiB).volume_id == vol.volume_id
        delete(driver, vol.volume_id)
        assert not direct.exists(path)


@pytest.mark.parametrize("request_kwargs", [
    dict(volume_capabilities=[cap()]),                                        # no name
    dict(name="n1"),                                                          # no capabilities
    dict(name="n2", volume_capabilities=[cap(block=True)]),
    dict(name="n3", volume_capabilities=[cap(mode=0)]),
    dict(name="n4", volume_capabilities=[cap(flags=("uid=0",))]),
    dict(name="n5", volume_capabilities=[cap()], parameters={"cachesize": "1G"}),
    dict(name="n6", volume_capabilities=[cap()], parameters={"basePath": "/k8s/../etc"}),
    dict(name="n7", volume_capabilities=[cap()], parameters={"basePath": "/user/elsewhere"}),
    dict(name="n8", volume_capabilities=[cap()],
         capacity_range=csi_pb2.CapacityRange(required_bytes=-1)),
    dict(name="n9", volume_capabilities=[cap()],
         capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GiB, limit_bytes=GiB)),
    dict(name="n10", volume_capabilities=[cap()], volume_content_source=csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id="s"))),
    dict(name="bad\x01name", volume_capabilities=[cap()]),
    dict(name="x" * 129, volume_capabilities=[cap()]),
    dict(name="n11", volume_capabilities=[cap(Mode.SINGLE_NODE_WRITER)],
         parameters={"readOnly": "true"}),
])
def test_create_invalid_arguments_create_nothing(driver: DriverProcess, direct: Any,
                                                 request_kwargs: dict[str, Any]) -> None:
    before = sorted(s.name for s in direct.list_dir(BASE_PATH)) if direct.exists(BASE_PATH) else []
    req = csi_pb2.CreateVolumeRequest(**request_kwargs)
    assert code_of(driver.controller().CreateVolume, req) is C.INVALID_ARGUMENT
    after = sorted(s.name for s in direct.list_dir(BASE_PATH)) if direct.exists(BASE_PATH) else []
    assert after == before
    assert not direct.exists("/user/elsewhere") and not direct.exists("/etc")


def test_create_refuses_a_directory_it_did_not_create(driver: DriverProcess, direct: Any) -> None:
    name = unique("pvc-foreign")
    direct.mkdirs(f"{BASE_PATH}/{name}")
    direct.write_file(f"{BASE_PATH}/{name}/precious", b"data")
    req = csi_pb2.CreateVolumeRequest(name=name, volume_capabilities=[cap()])
    assert code_of(driver.controller().CreateVolume, req) is C.ALREADY_EXISTS
    assert direct.content_summary(f"{BASE_PATH}/{name}").space_quota == -1   # untouched
    # and an id pointing at it deletes nothing: it has no record
    delete(driver, f"v1:{driver.hdfs_uri}{BASE_PATH}/{name}")
    assert direct.read_file(f"{BASE_PATH}/{name}/precious") == b"data"


def test_storage_class_parameters_are_applied(driver: DriverProcess, direct: Any) -> None:
    name = unique("pvc-params")
    vol = create(driver, name, required=GiB, params={
        "basePath": f"{BASE_PATH}/team-a", "owner": "alice", "group": "ml", "mode": "0770",
        "cacheSize": "64Mi", "metadataTtl": "5s", "csi.storage.k8s.io/pvc/name": "data"})
    path = f"{BASE_PATH}/team-a/{name}"
    assert vol_path(vol) == path
    st = direct.get_status(path)
    assert (st.owner, st.group, st.permission) == ("alice", "ml", 0o770)
    assert vol.volume_context["cacheSize"] == str(64 * 1024**2)
    assert vol.volume_context["metadataTtl"] == "5"
    assert "csi.storage.k8s.io/pvc/name" not in vol.volume_context
    delete(driver, vol.volume_id)
    assert not direct.exists(path)


# -- DeleteVolume ----------------------------------------------------------------------------------

def test_delete_unknown_and_repeated(driver: DriverProcess) -> None:
    ctl = driver.controller()
    assert code_of(ctl.DeleteVolume, csi_pb2.DeleteVolumeRequest()) is C.INVALID_ARGUMENT
    assert code_of(ctl.DeleteVolume, csi_pb2.DeleteVolumeRequest(
        volume_id="fake-vol-id-0123456789")) is C.OK
    assert code_of(ctl.DeleteVolume, csi_pb2.DeleteVolumeRequest(
        volume_id=f"v1:{driver.hdfs_uri}{BASE_PATH}/pvc-never-created")) is C.OK
    vol = create(driver, unique("pvc-del"))
    for _ in range(3):
        req = csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id)
        assert code_of(ctl.DeleteVolume, req) is C.OK


@pytest.mark.parametrize("path", ["/user/important", "/", "/k8s",
                                  "/k8s/volumes/../../user/important", "/k8s/volumes/.hdfs-csi"])
def test_forged_volume_ids_delete_nothing(driver: DriverProcess, direct: Any, path: str) -> None:
    direct.mkdirs("/user/important")
    direct.write_file("/user/important/keep", b"keep")
    forged = f"v1:{driver.hdfs_uri}{path}"
    ctl = driver.controller()
    assert code_of(ctl.DeleteVolume, csi_pb2.DeleteVolumeRequest(volume_id=forged)) in (
        C.INVALID_ARGUMENT, C.OK)
    assert code_of(ctl.ControllerExpandVolume, csi_pb2.ControllerExpandVolumeRequest(
        volume_id=forged, capacity_range=csi_pb2.CapacityRange(required_bytes=GiB))) in (
        C.INVALID_ARGUMENT, C.NOT_FOUND)
    assert direct.read_file("/user/important/keep") == b"keep"
    assert direct.content_summary("/user/important").space_quota == -1


def test_on_delete_retain_and_archive(driver: DriverProcess, direct: Any) -> None:
    kept = create(driver, unique("pvc-retain"), params={"onDelete": "retain"})
    direct.write_file(f"{vol_path(kept)}/result.txt", b"42")
    delete(driver, kept.volume_id)
    assert direct.read_file(f"{vol_path(kept)}/result.txt") == b"42"
    # its record is gone, so the directory is now just data: not re-adopted
    name = posixpath.basename(vol_path(kept))
    readopt = csi_pb2.CreateVolumeRequest(
        name=name, volume_capabilities=[cap()], parameters={"onDelete": "retain"})
    assert code_of(driver.controller().CreateVolume, readopt) is C.ALREADY_EXISTS

    archived = create(driver, unique("pvc-archive"), params={"onDelete": "archive"})
    direct.write_file(f"{vol_path(archived)}/model.bin", b"weights")
    delete(driver, archived.volume_id)
    assert not direct.exists(vol_path(archived))
    archive = f"{BASE_PATH}/.hdfs-csi/archive"
    moved = [s.path for s in direct.list_dir(archive)
             if s.name.startswith(posixpath.basename(vol_path(archived)) + ".")]
    assert len(moved) == 1 and direct.read_file(f"{moved[0]}/model.bin") == b"weights"
    delete(driver, archived.volume_id)   # idempotent after archiving


# -- ValidateVolumeCapabilities --------------------------------------------------------------------

def test_validate_volume_capabilities(driver: DriverProcess, direct: Any) -> None:
    ctl = driver.controller()
    vol = create(driver, unique("sanity-controller-validate"))
    ok = ctl.ValidateVolumeCapabilities(csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=vol.volume_id, volume_context=vol.volume_context, volume_capabilities=[cap()]))
    assert ok.HasField("confirmed") and list(ok.confirmed.volume_capabilities) == [cap()]
    block = ctl.ValidateVolumeCapabilities(csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=vol.volume_id, volume_capabilities=[cap(block=True)]))
    assert not block.HasField("confirmed") and block.message
    assert code_of(ctl.ValidateVolumeCapabilities, csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=vol.volume_id)) is C.INVALID_ARGUMENT
    assert code_of(ctl.ValidateVolumeCapabilities, csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_capabilities=[cap()])) is C.INVALID_ARGUMENT
    assert code_of(ctl.ValidateVolumeCapabilities, csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id="fake-vol-id-123", volume_capabilities=[cap()])) is C.NOT_FOUND
    delete(driver, vol.volume_id)
    assert code_of(ctl.ValidateVolumeCapabilities, csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=vol.volume_id, volume_capabilities=[cap()])) is C.NOT_FOUND

    # static volumes: the path must exist; a pinned snapshot is reader-only
    direct.mkdirs("/datasets/validate")
    static = {"path": "/datasets/validate"}
    rox = ctl.ValidateVolumeCapabilities(csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id="pv-dataset", volume_context=static,
        volume_capabilities=[cap(Mode.MULTI_NODE_READER_ONLY)]))
    assert rox.HasField("confirmed")
    ro_ctx = {"path": "/datasets/validate", "readOnly": "true"}
    rw = ctl.ValidateVolumeCapabilities(csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id="pv-dataset", volume_context=ro_ctx,
        volume_capabilities=[cap(Mode.MULTI_NODE_MULTI_WRITER)]))
    assert not rw.HasField("confirmed") and "read-only" in rw.message
    assert code_of(ctl.ValidateVolumeCapabilities, csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id="pv-missing", volume_context={"path": "/datasets/does-not-exist"},
        volume_capabilities=[cap()])) is C.NOT_FOUND


# -- GetCapacity and ControllerExpandVolume --------------------------------------------------------

def test_get_capacity(driver: DriverProcess, direct: Any) -> None:
    ctl = driver.controller()
    resp = ctl.GetCapacity(csi_pb2.GetCapacityRequest())
    remaining = direct.fs_stats().remaining
    assert 0 < resp.available_capacity <= remaining + 64 * 1024**2
    assert ctl.GetCapacity(csi_pb2.GetCapacityRequest(
        volume_capabilities=[cap(block=True)])).available_capacity == 0
    assert code_of(ctl.GetCapacity, csi_pb2.GetCapacityRequest(
        parameters={"nonsense": "1"})) is C.INVALID_ARGUMENT


def test_expand_volume(driver: DriverProcess, direct: Any) -> None:
    ctl = driver.controller()
    vol = create(driver, unique("sanity-expand-volume"), required=10 * GiB)

    def expand(required: int = 0, limit: int = 0, volume_id: str | None = None) -> Any:
        return csi_pb2.ControllerExpandVolumeRequest(
            volume_id=vol.volume_id if volume_id is None else volume_id,
            capacity_range=csi_pb2.CapacityRange(required_bytes=required, limit_bytes=limit),
            volume_capability=cap())

    resp = ctl.ControllerExpandVolume(expand(11 * GiB))
    assert resp.capacity_bytes == 11 * GiB and not resp.node_expansion_required
    assert direct.content_summary(vol_path(vol)).space_quota == 11 * GiB
    assert ctl.ControllerExpandVolume(expand(11 * GiB)).capacity_bytes == 11 * GiB  # idempotent
    assert ctl.ControllerExpandVolume(expand(5 * GiB)).capacity_bytes == 11 * GiB   # no shrink
    assert code_of(ctl.ControllerExpandVolume, expand(5 * GiB, 5 * GiB)) is C.OUT_OF_RANGE
    assert code_of(ctl.ControllerExpandVolume, csi_pb2.ControllerExpandVolumeRequest(
        volume_id=vol.volume_id)) is C.INVALID_ARGUMENT
    assert code_of(ctl.ControllerExpandVolume, expand(GiB, volume_id="")) is C.INVALID_ARGUMENT
    assert code_of(ctl.ControllerExpandVolume, expand(GiB, volume_id="fake-vol-id")) is C.NOT_FOUND
    delete(driver, vol.volume_id)
    assert code_of(ctl.ControllerExpandVolume, expand(12 * GiB)) is C.NOT_FOUND


# -- concurrency, configuration, shutdown, logs ----------------------------------------------------

@pytest.mark.minidfs_only
def test_concurrent_calls_on_one_volume_get_aborted(driver: DriverProcess,
                                                    sanity_env: SanityEnv) -> None:
    name = unique("pvc-race")
    req = csi_pb2.CreateVolumeRequest(name=name, volume_capabilities=[cap()])
    sanity_env.dfs.set_fault("rpc_latency", 0.2)     # every NameNode call takes 200 ms
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda _: code_of(driver.controller().CreateVolume, req),
                                  range(4)))
    finally:
        sanity_env.dfs.set_fault("rpc_latency", 0)
    assert C.OK in codes and C.ABORTED in codes
    assert set(codes) <= {C.OK, C.ABORTED}
    vol = create(driver, name)   # the retry after ABORTED finds the same volume
    delete(driver, vol.volume_id)


def test_controller_only_mode_and_limits(sanity_env: SanityEnv, tmp_path: Any) -> None:
    d = DriverProcess(tmp_path / "ctl", sanity_env.uri, mode="controller", node_id="",
                      extra_args=["--max-capacity", "2Gi", "--quota-replication", "1"]).start()
    try:
        assert code_of(d.node().NodeGetInfo, csi_pb2.NodeGetInfoRequest()) is C.UNIMPLEMENTED
        big = csi_pb2.CreateVolumeRequest(
            name=unique("pvc-big"), volume_capabilities=[cap()],
            capacity_range=csi_pb2.CapacityRange(required_bytes=3 * GiB))
        assert code_of(d.controller().CreateVolume, big) is C.OUT_OF_RANGE
        resp = d.controller().GetCapacity(csi_pb2.GetCapacityRequest())
        assert resp.maximum_volume_size.value == 2 * GiB
        assert resp.available_capacity <= 2 * GiB
    finally:
        assert d.stop() == 0


def test_no_base_path_disables_dynamic_provisioning(sanity_env: SanityEnv, tmp_path: Any) -> None:
    d = DriverProcess(tmp_path / "nobase", sanity_env.uri, base_path=None).start()
    try:
        req = csi_pb2.CreateVolumeRequest(name="pvc-x", volume_capabilities=[cap()])
        assert code_of(d.controller().CreateVolume, req) is C.FAILED_PRECONDITION
    finally:
        d.stop()


def test_sigterm_stops_gracefully_and_logs_are_clean(sanity_env: SanityEnv, tmp_path: Any) -> None:
    d = DriverProcess(tmp_path / "term", sanity_env.uri).start()
    secret = "S3CRET" + unique("k").replace("-", "")
    for _ in range(3):
        d.identity().Probe(csi_pb2.ProbeRequest())
    ctl = d.controller()
    # a call that succeeds and one that fails on the secret itself: neither may log it
    assert code_of(ctl.DeleteVolume, csi_pb2.DeleteVolumeRequest(
        volume_id="fake-vol-id", secrets={"user": secret})) is C.OK
    assert code_of(ctl.CreateVolume, csi_pb2.CreateVolumeRequest(
        name="pvc-log", volume_capabilities=[cap()],
        secrets={"kerberosPrincipal": "a@B", "kerberosKeytab": "!" + secret})) is C.INVALID_ARGUMENT
    assert d.stop(signal.SIGTERM) == 0
    assert not d.socket.exists()
    log = d.log_text()
    assert "DeleteVolume request" in log and "DeleteVolume ok" in log
    assert "CreateVolume failed" in log and "INVALID_ARGUMENT" in log
    assert secret not in log
    assert "Probe" not in log
    assert "received SIGTERM" in log
