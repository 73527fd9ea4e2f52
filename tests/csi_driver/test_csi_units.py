"""Unit tests of the driver's pure parts: parsing, paths, ids, errors, redaction, state."""

from __future__ import annotations

import base64
import json
import os
import stat

import grpc
import pytest

from csi_driver import errors, params
from csi_driver.capabilities import Capability, check_capability
from csi_driver.cli import build_parser, config_from_args
from csi_driver.credentials import CredentialStore
from csi_driver.locks import InFlight
from csi_driver.logging_interceptor import REDACTED, redact
from csi_driver.paths import check_local_path, is_under, is_volume_dirname, volume_dirname
from csi_driver.state import StagedVolume, StateStore, Target, volume_key
from csi_driver.volumes import VolumeRef, decode_volume_id, encode_volume_id
from hdfs_client import errors as hdfs_errors
from hdfs_csi_pb import csi_pb2

IA = errors.InvalidArgument


# -- parameters -------------------------------------------------------------------------------

def test_storage_class_parameters_parse_to_canonical_values() -> None:
    p = params.parse_create_parameters({
        "hdfsUri": "hdfs://nn:8020", "basePath": "/k8s//vols/", "owner": "alice", "group": "ml",
        "mode": "755", "onDelete": "archive", "readOnly": "false", "cacheSize": "10Gi",
        "readAheadMax": "64Mi", "metadataTtl": "30s",
        "csi.storage.k8s.io/pvc/name": "anything", "csi.storage.k8s.io/pv/name": "x",
    })
    assert p.hdfs_uri == "hdfs://nn:8020"
    assert p.base_path == "/k8s/vols"
    assert p.mode == 0o755
    assert p.mount.get("cache_size") == 10 * 1024**3
    assert p.canonical()["mode"] == "0755"
    # the same meaning spelled differently compares equal (repeated CreateVolume)
    q = params.parse_create_parameters({"hdfsUri": "hdfs://nn:8020/", "basePath": "/k8s/vols",
                                        "owner": "alice", "group": "ml", "mode": "0755",
                                        "onDelete": "archive", "cacheSize": "10GiB",
                                        "readAheadMax": "64M", "metadataTtl": "30"})
    assert q.canonical() == p.canonical()


@pytest.mark.parametrize("bad", [
    {"cachesize": "1G"},                        # typo of a real key
    {"hdfsUri": "http://nn"},
    {"hdfsUri": "hdfs://nn/some/path"},         # path belongs in basePath
    {"basePath": "relative/path"},
    {"basePath": "/k8s/../etc"},
    {"basePath": "/"},
    {"basePath": "/a\x00b"},
    {"mode": "999"},
    {"mode": "rwxr-xr-x"},
    {"onDelete": "shred"},
    {"owner": "-rf"},
    {"readOnly": "maybe"},
    {"cacheSize": "lots"},
    {"readAheadMax": "2Ti"},
    {"readAheadMax": "4Ki"},                    # below what a mount accepts: refused here already
    {"metadataTtl": "-1"},
    {"basePath": "/" + "x" * 5000},
])
def test_bad_storage_class_parameters_are_invalid_argument(bad: dict[str, str]) -> None:
    with pytest.raises(IA):
        params.parse_create_parameters(bad)


def test_volume_context_static_and_snapshot() -> None:
    ctx = params.parse_volume_context({"path": "/datasets/imagenet", "snapshot": "epoch-3",
                                       "readOnly": "true"})
    assert (ctx.path, ctx.snapshot, ctx.mount.read_only) == ("/datasets/imagenet", "epoch-3", True)
    for bad in ({"snapshot": "s1"}, {"path": "/d", "snapshot": "../x"},
                {"path": "/d", "snapshot": "a/b"}, {"path": "/d", "snapshot": ".snapshot"},
                {"path": "../d"}, {"path": "/d", "nope": "1"}):
        with pytest.raises(IA):
            params.parse_volume_context(bad)


def test_volume_context_of_a_pv_the_real_provisioner_created() -> None:
    """external-provisioner v6 writes its identity into every PV's volumeAttributes;
    the first NodeStageVolume on a real cluster was refused for it."""
    ctx = params.parse_volume_context({
        "hdfsUri": "hdfs://nn:8020", "path": "/csi/pvc-1",
        "storage.kubernetes.io/csiProvisionerIdentity": "1764830000000-1234-hdfs.csi.hdfs-csi.io",
        "csi.storage.k8s.io/pvc/name": "data"})
    assert ctx.path == "/csi/pvc-1"
    with pytest.raises(IA, match="storage.kubernetes.io/"):
        params.parse_volume_context({"path": "/d", "storage.kubernetes.ioX": "1"})


def test_secrets_user_and_kerberos() -> None:
    assert params.parse_secrets({}) is None
    assert params.parse_secrets({"user": "alice"}) == params.Credentials(user="alice")
    keytab = os.urandom(300)
    creds = params.parse_secrets({"kerberosPrincipal": "alice/host@EXAMPLE.COM",
                                  "kerberosKeytab": base64.b64encode(keytab).decode()})
    assert creds is not None and creds.keytab == keytab and creds.kerberos
    assert "keytab" not in repr(creds).replace("keytab=", "")  # value hidden from repr
    assert base64.b64encode(keytab).decode() not in repr(creds)


@pytest.mark.parametrize("bad", [
    {"kerberosPrincipal": "alice@X"},                            # keytab missing
    {"kerberosKeytab": "AAAA"},                                  # principal missing
    {"kerberosPrincipal": "alice@X", "kerberosKeytab": "not base64!!"},
    {"user": "bob", "kerberosPrincipal": "alice@X", "kerberosKeytab": "AAAA"},
    {"password": "hunter2"},
])
def test_bad_secrets_never_echo_values(bad: dict[str, str]) -> None:
    with pytest.raises(IA) as info:
        params.parse_secrets(bad)
    for value in bad.values():
        if len(value) > 3:
            assert value not in str(info.value)


# -- paths and ids --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "relative", "/a/../b", "/a/\x00", "/", "/" + "a" * 5000])
def test_local_paths_reject_unsafe(bad: str) -> None:
    with pytest.raises(IA):
        check_local_path("target_path", bad)


def test_local_path_normalised() -> None:
    assert check_local_path("p", "/var//lib/./x/") == "/var/lib/x"


def test_volume_dirnames_are_single_safe_components() -> None:
    assert volume_dirname("pvc-8f3c1e2a-1b2c-4d5e-9f00-123456789abc") == \
        "pvc-8f3c1e2a-1b2c-4d5e-9f00-123456789abc"
    for name in ["..", ".", "a/b", "../../etc", "x" * 128, "ümlaut", "-leading", "a b", "_x"]:
        d = volume_dirname(name)
        assert "/" not in d and d not in (".", "..") and is_volume_dirname(d), name
        assert d.startswith("_")
    assert volume_dirname("a/b") != volume_dirname("a_b")
    assert is_under("/k8s/volumes/x", "/k8s/volumes")
    assert not is_under("/k8s/volumesX", "/k8s/volumes")


def test_volume_id_round_trip_and_foreign_ids() -> None:
    ref = VolumeRef("hdfs://nn:8020", "/k8s/volumes/pvc-1")
    vid = encode_volume_id(ref)
    assert vid == "v1:hdfs://nn:8020/k8s/volumes/pvc-1"
    assert len(vid) <= 128
    assert decode_volume_id(vid) == ref
    assert decode_volume_id("fake-vol-id-1234") is None       # not ours: NOT_FOUND / OK
    assert decode_volume_id("sample-dataset") is None


@pytest.mark.parametrize("bad", [
    "v1:", "v1:garbage", "v1:http://nn/k8s/v/x", "v1:hdfs://nn/k8s/../etc/x",
    "v1:hdfs://nn/topdir", "v1:hdfs://nn//k8s/volumes/x", "v1:hdfs://nn/k8s/volumes/x/",
    "v1:hdfs://nn/k8s/volumes/.hdfs-csi", "v1:hdfs://nn/k8s/volumes/a b", "bad\nid", "x" * 2000,
])
def test_malformed_volume_ids_are_invalid_argument(bad: str) -> None:
    with pytest.raises(IA):
        decode_volume_id(bad)


def test_capability_checks() -> None:
    ok = Capability("mount", 1)
    assert check_capability(ok) is ok
    for bad in [None, Capability("", 1), Capability("block", 1), Capability("mount", 0),
                Capability("mount", 99), Capability("mount", 1, fs_type="ext4"),
                Capability("mount", 1, mount_flags=("uid=0,keyfile=/etc/shadow",)),
                Capability("mount", 1, mount_flags=("ro", "rw")),
                Capability("mount", 1, mount_group="1000")]:
        with pytest.raises(IA):
            check_capability(bad)
    assert Capability("mount", 3).reader_only
    assert Capability("mount", 1, mount_flags=("ro",)).reader_only


# -- errors and redaction --------------------------------------------------------------------------

def test_one_status_table_uses_the_most_specific_class() -> None:
    assert errors.status_code(hdfs_errors.HdfsTimeout("t")) is grpc.StatusCode.DEADLINE_EXCEEDED
    assert errors.status_code(hdfs_errors.HdfsIOError("x")) is grpc.StatusCode.UNAVAILABLE
    assert errors.status_code(hdfs_errors.NotFound("x")) is grpc.StatusCode.NOT_FOUND
    assert errors.status_code(errors.Aborted("x")) is grpc.StatusCode.ABORTED
    assert errors.status_code(errors.OutOfRange("x")) is grpc.StatusCode.OUT_OF_RANGE
    code, message = errors.to_status(KeyError("boom"))
    assert code is grpc.StatusCode.INTERNAL and "KeyError" in message


def test_redaction_strips_secrets_and_mount_flags_everywhere() -> None:
    req = csi_pb2.NodeStageVolumeRequest(
        volume_id="v", staging_target_path="/s",
        secrets={"kerberosKeytab": "S3CRET-KEYTAB", "user": "alice"},
        volume_context={"path": "/datasets/x"},
        volume_capability=csi_pb2.VolumeCapability(
            mount=csi_pb2.VolumeCapability.MountVolume(mount_flags=["password=S3CRET-FLAG"]),
            access_mode=csi_pb2.VolumeCapability.AccessMode(mode=1)))
    view = redact(req)
    text = json.dumps(view)
    assert "S3CRET" not in text and "alice" not in text
    assert view["secrets"] == REDACTED
    assert view["volume_capability"]["mount"]["mount_flags"] == REDACTED
    assert view["volume_context"] == {"path": "/datasets/x"}
    assert view["volume_capability"]["access_mode"]["mode"] == "SINGLE_NODE_WRITER"
    # every secrets field of every request type is marked in the proto
    for name in ("CreateVolumeRequest", "DeleteVolumeRequest", "NodePublishVolumeRequest",
                 "ControllerExpandVolumeRequest", "ValidateVolumeCapabilitiesRequest"):
        field = getattr(csi_pb2, name).DESCRIPTOR.fields_by_name["secrets"]
        assert field.GetOptions().Extensions[csi_pb2.csi_secret]


# -- state, credentials, locks ---------------------------------------------------------------------

def _vol(volume_id: str = "vol-1") -> StagedVolume:
    return StagedVolume(volume_id=volume_id, key=volume_key(volume_id), staging_path="/s",
                        cluster_uri="hdfs://nn:1", hdfs_path="/d", read_only=False,
                        capability={"mode": 1}, mount_options={"cacheSize": "1024"},
                        targets={"/t": Target("/t", True, {"mode": 1}, True)})


def test_state_round_trip_is_atomic_and_private(tmp_path: os.PathLike[str]) -> None:
    store = StateStore(str(tmp_path))
    vol = _vol()
    store.save(vol)
    assert store.load("vol-1") == vol
    files = os.listdir(store.dir)
    assert files == [f"{vol.key}.json"]          # no temporary file left
    assert stat.S_IMODE(os.stat(os.path.join(store.dir, files[0])).st_mode) == 0o600
    with open(os.path.join(store.dir, "garbage.json"), "w") as fh:
        fh.write("{not json")
    assert [v.volume_id for v in store.all()] == ["vol-1"]   # corrupt record skipped
    store.delete(vol)
    assert store.load("vol-1") is None


def test_keytab_file_is_0600_and_removed(tmp_path: os.PathLike[str]) -> None:
    store = CredentialStore(str(tmp_path))
    creds = params.Credentials(principal="a@B", keytab=b"\x05\x02secret")
    path = store.write_keytab("k1", creds)
    assert open(path, "rb").read() == b"\x05\x02secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.dir).st_mode) == 0o700
    assert store.mount_args(creds, path, None) == ["--kerberos-principal", "a@B",
                                                  "--kerberos-keytab", path]
    store.remove("k1")
    assert not os.path.exists(path)
    assert store.mount_args(None, None, "hdfs") == ["--user", "hdfs"]


def test_inflight_second_holder_is_aborted() -> None:
    locks = InFlight()
    with locks.hold("v"):
        with pytest.raises(errors.Aborted):
            with locks.hold("v"):
                pass
        with locks.hold("w"):
            pass
    with locks.hold("v"):
        pass


# -- CLI -------------------------------------------------------------------------------------------

def test_flags_default_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSI_ENDPOINT", "unix:///run/csi/x.sock")
    monkeypatch.setenv("NODE_ID", "node-7")
    monkeypatch.setenv("DRIVER_MODE", "node")
    monkeypatch.setenv("HDFS_URI", "hdfs://nn:8020")
    monkeypatch.setenv("HDFS_BASE_PATH", "/k8s/volumes")
    monkeypatch.setenv("HDFS_USER", "csi")
    monkeypatch.setenv("STATE_DIR", "/var/lib/x")
    cfg = config_from_args(build_parser().parse_args([]))
    assert (cfg.endpoint, cfg.node_id, cfg.mode, cfg.hdfs_uri, cfg.base_path, cfg.hdfs_user,
            cfg.state_dir) == ("unix:///run/csi/x.sock", "node-7", "node", "hdfs://nn:8020",
                               "/k8s/volumes", "csi", "/var/lib/x")
    # flags win over the environment
    cfg = config_from_args(build_parser().parse_args(["--mode", "controller", "--base-path", "/b"]))
    assert (cfg.mode, cfg.base_path) == ("controller", "/b")


@pytest.mark.parametrize("argv", [
    ["--endpoint", "tcp://0.0.0.0:1", "--node-id", "n"],
    ["--endpoint", "unix:///s.sock"],                         # node mode without node id
    ["--endpoint", "unix:///s.sock", "--node-id", "n", "--base-path", "/a/../b"],
    ["--endpoint", "unix:///s.sock", "--node-id", "n", "--quota-replication", "0"],
])
def test_bad_flags_are_rejected(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NODE_ID", "DRIVER_MODE", "HDFS_BASE_PATH"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError):
        config_from_args(build_parser().parse_args(argv))


def test_capacity_that_overflows_the_quota_is_out_of_range(tmp_path: os.PathLike[str]) -> None:
    from csi_driver.clients import ClientPool
    from csi_driver.config import Config
    from csi_driver.provisioner import CapacityRange, Provisioner

    cfg = Config(endpoint="unix:///x.sock", node_id="n", state_dir=str(tmp_path),
                 quota_replication=3, max_capacity=0).validate()
    prov = Provisioner(cfg, ClientPool(None))
    assert prov._resolve_capacity(CapacityRange(2**61, 0)) == 2**61
    with pytest.raises(errors.OutOfRange):
        prov._resolve_capacity(CapacityRange(2**62, 0))      # x3 does not fit in int64
    assert prov._resolve_capacity(None) == cfg.default_capacity
    assert prov._resolve_capacity(CapacityRange(0, 5)) == 5
