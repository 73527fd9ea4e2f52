"""Kerberos for real: a real MIT KDC, Apache Hadoop's HDFS in secure mode, the real driver.

Everything here is the real part: ``krb5kdc`` on a loopback port with
principals and keytabs made by the test (:mod:`hadoop_cluster.kdc`), a
MiniDFSCluster with Kerberos authentication, service-level authorization,
block access tokens and SASL on DataTransferProtocol
(:mod:`hadoop_cluster.secure`), ``hdfs-csi driver`` on a unix socket, FUSE
mounts made by ``hdfs-csi mount``, and our own SASL GSSAPI client
(:mod:`hdfs_client.rpc_sasl`) against Hadoop's NameNode.

What is checked (issue 12, section 4):

* a volume staged with a keytab Secret is readable in the pod, as that
  principal (HDFS permissions apply to it, not to the superuser);
* a wrong, stale, foreign, unknown or missing keytab is refused with
  PERMISSION_DENIED / UNAUTHENTICATED (INVALID_ARGUMENT for a malformed
  Secret) and a sentence, and leaves no mount, keytab file or state behind;
* a mount keeps reading across several ticket lifetimes (tickets of
  ``TICKET_LIFE`` seconds, none renewable): every round, once the ticket
  has expired, the connections to the NameNode are aborted (``ss -K``), so
  the mount must connect again and log in from its keytab, which the KDC's
  log shows (a Hadoop client never re-authenticates a live connection);
* the keytab and the keys in it appear in no log, state file, ticket cache
  file, process command line or environment.

The secure cluster takes ~10-20 s to start on two cores; the ticket-lifetime
test runs ~3 x (TICKET_LIFE + 2 s) ~ 55 s; the rest a few seconds.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from csi_kit import FUSE_REASON, cap
from krb_kit import TICKET_LIFE, SecureHdfs
from sanity_kit import DriverProcess, mounts_below, unmount_below

from csi_driver.state import volume_key
from hdfs_client import errors
from hadoop_wire import rpc_framing as w
from hdfs_client import rpc_sasl
from hdfs_csi_pb import csi_pb2
from hdfs_csi_pb.hadoop import namenode_pb2 as nn
from hdfs_csi_pb.hadoop import rpc_pb2

pytestmark = [pytest.mark.hadoop, pytest.mark.kerberos, pytest.mark.timeout(600)]
needs_fuse = pytest.mark.skipif(FUSE_REASON is not None, reason=FUSE_REASON or "")

C = grpc.StatusCode
MiB = 1 << 20
DATASET = "/datasets/alice"
#: what a refused identity may come back as; the text must be a sentence, not a repr
REFUSED = (C.PERMISSION_DENIED, C.UNAUTHENTICATED)
REPR_TOKENS = ("GssMajorCodes", "GSSAPIError(", "RuntimeError", "Traceback", "SASLError(",
               "PanicException", "0x000")


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(secure_hdfs: SecureHdfs) -> dict[str, bytes]:
    """alice's dataset (hers, 0750) with a file only the superuser may read."""
    su = secure_hdfs.superuser
    su.mkdirs(DATASET)
    su.set_owner(DATASET, "alice", "alice")
    su.set_permission(DATASET, 0o750)
    files = {"part-0": os.urandom(3 * MiB + 12345), "part-1": os.urandom(200_000)}
    for name, body in files.items():
        _write(su, f"{DATASET}/{name}", body)
        su.set_owner(f"{DATASET}/{name}", "alice", "alice")
    _write(su, f"{DATASET}/hdfs-only", b"not for alice")      # the superuser's, 0600
    su.set_permission(f"{DATASET}/hdfs-only", 0o600)
    return files


class KerberosDriver(DriverProcess):
    kubelet_root: Path   #: staging paths and pod targets go below it (--kubelet-dir)


@pytest.fixture(scope="module")
def driver(secure_hdfs: SecureHdfs, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[KerberosDriver]:
    """``hdfs-csi driver --mode all`` with the cluster's Kerberos client configuration."""
    if FUSE_REASON is not None:
        pytest.skip(FUSE_REASON)
    root = tmp_path_factory.mktemp("krb-driver")
    kubelet = root / "kubelet"
    (kubelet / "staging").mkdir(parents=True)
    (kubelet / "pods").mkdir()
    su = secure_hdfs.superuser
    su.mkdirs("/k8s/volumes")
    su.set_owner("/k8s/volumes", "alice", None)
    d = KerberosDriver(root / "driver", secure_hdfs.uri, mode="all", base_path="/k8s/volumes",
                       env=secure_hdfs.kdc.client_env(), hadoop_conf_dir=secure_hdfs.conf_dir,
                       extra_args=["--kubelet-dir", str(kubelet), "--quota-replication", "1"])
    d.kubelet_root = kubelet
    d.start()
    try:
        yield d
    finally:
        d.stop()
        unmount_below(root)


class Volume:
    """One staged+published static volume of ``driver`` (undone by :meth:`close`)."""

    def __init__(self, driver: KerberosDriver, secrets: dict[str, str], path: str = DATASET):
        self.driver = driver
        self.id = f"pv-krb-{uuid.uuid4().hex[:10]}"
        self.key = volume_key(self.id)
        root = driver.kubelet_root
        self.staging = root / "staging" / self.id
        self.staging.mkdir()
        self.target = str(root / "pods" / self.id)
        self.context = {"path": path}
        self.secrets = secrets

    def stage(self) -> None:
        self.driver.node().NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
            volume_id=self.id, staging_target_path=str(self.staging), volume_capability=cap(),
            volume_context=self.context, secrets=self.secrets), timeout=90)

    def publish(self) -> None:
        self.driver.node().NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
            volume_id=self.id, staging_target_path=str(self.staging), target_path=self.target,
            volume_capability=cap(), volume_context=self.context), timeout=60)

    def close(self) -> None:
        node = self.driver.node()
        node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=self.id, target_path=self.target), timeout=60)
        node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
            volume_id=self.id, staging_target_path=str(self.staging)), timeout=60)

    def daemon_pid(self) -> int:
        return int((self.driver.state_dir / "mounts" / f"{self.key}.pid").read_text().split()[0])

    def leftovers(self) -> list[str]:
        """Whatever of this volume is still on the node."""
        state = self.driver.state_dir
        left = [str(p) for p in (state / "credentials" / f"{self.key}.keytab",
                                 state / "volumes" / f"{self.key}.json",
                                 state / "mounts" / f"{self.key}.pid",
                                 state / "fuse" / self.key) if p.exists()]
        left += [f"mount at {m}" for m in mounts_below(self.staging.parent.parent)
                 if self.id in m]
        return left


def secret(principal: str, keytab: bytes | str | Path) -> dict[str, str]:
    raw = keytab if isinstance(keytab, bytes) else Path(keytab).read_bytes()
    return {"kerberosPrincipal": principal, "kerberosKeytab": base64.b64encode(raw).decode()}


def _write(client: Any, path: str, body: bytes) -> None:
    with client.create(path, overwrite=True) as f:
        f.write(body)


# -- the pod-side read -------------------------------------------------------------------------

@needs_fuse
def test_stage_with_keytab_secret_and_read_in_the_pod(secure_hdfs: SecureHdfs,
                                                      driver: KerberosDriver,
                                                      data: dict[str, bytes]) -> None:
    vol = Volume(driver, secret(secure_hdfs.alice, secure_hdfs.alice_keytab))
    logins_before = secure_hdfs.kdc.issued("alice")
    vol.stage()
    try:
        vol.publish()
        assert sorted(os.listdir(vol.target)) == ["hdfs-only", "part-0", "part-1"]
        for name, body in data.items():
            assert Path(vol.target, name).read_bytes() == body
        # the mount is alice, not the superuser: HDFS permissions apply to her
        with pytest.raises(PermissionError):
            Path(vol.target, "hdfs-only").read_bytes()
        st = os.stat(Path(vol.target, "part-0"))
        assert st.st_size == len(data["part-0"])
        assert secure_hdfs.kdc.issued("alice") > logins_before   # a real login at the KDC
        # df in the pod: the cluster's real capacity (our admin client, over SASL GSSAPI)
        real = _fs_stats(secure_hdfs)
        sv = os.statvfs(vol.target)
        assert sv.f_blocks == real.capacity // sv.f_frsize, (
            "statfs fell back to fixed numbers: the admin RPC client of the FUSE daemon "
            "cannot log in with Kerberos")
        stats = driver.node().NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(
            volume_id=vol.id, volume_path=vol.target), timeout=60)
        assert not stats.volume_condition.abnormal
        assert stats.usage[0].used >= sum(len(b) for b in data.values())
    finally:
        vol.close()
    assert vol.leftovers() == []


# -- refusals ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_keytabs(secure_hdfs: SecureHdfs, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, tuple[str, bytes]]:
    """principal claimed -> (why it must fail, keytab bytes)."""
    kdc = secure_hdfs.kdc
    root = tmp_path_factory.mktemp("bad-keytabs")
    stale = kdc.add_principal("bob", root / "bob.keytab")
    kdc.rotate_key("bob")                                   # bob.keytab is now stale
    gone = kdc.add_principal("carol", root / "carol.keytab")
    kdc.delete_principal("carol")                           # the KDC forgot carol
    alice = Path(secure_hdfs.alice_keytab).read_bytes()
    return {
        "stale": (kdc.principal("bob"), Path(stale).read_bytes()),
        "foreign": (kdc.principal("dave"), alice),         # alice's keytab, dave claimed
        "unknown": (kdc.principal("carol"), Path(gone).read_bytes()),
        "garbage": (kdc.principal("alice"), os.urandom(300)),
    }


@needs_fuse
@pytest.mark.parametrize("case", ["stale", "foreign", "unknown", "garbage"])
def test_a_wrong_keytab_is_refused_and_leaves_nothing(case: str, secure_hdfs: SecureHdfs,
                                                      driver: KerberosDriver,
                                                      data: dict[str, bytes],
                                                      bad_keytabs: dict[str, Any]) -> None:
    principal, keytab = bad_keytabs[case]
    vol = Volume(driver, secret(principal, keytab))
    with pytest.raises(grpc.RpcError) as info:
        vol.stage()
    code, details = info.value.code(), info.value.details() or ""
    print(f"{case}: {code.name}: {details}")
    assert code in REFUSED, f"{case}: {code} {details}"
    assert not any(t in details for t in REPR_TOKENS), f"{case}: not a sentence: {details}"
    assert "Kerberos" in details and principal.split("@")[0] in details, details
    assert "\n" not in details and len(details) < 600, details
    assert vol.leftovers() == []
    assert list((driver.state_dir / "credentials").glob("*.keytab")) == []
    # and nothing of it in the driver's log but the principal's name
    assert base64.b64encode(keytab).decode() not in driver.log_text()


@needs_fuse
def test_a_missing_or_malformed_keytab_is_invalid_argument(secure_hdfs: SecureHdfs,
                                                           driver: KerberosDriver) -> None:
    for secrets in ({"kerberosPrincipal": secure_hdfs.alice},
                    {"kerberosPrincipal": secure_hdfs.alice, "kerberosKeytab": "!!not base64!!"},
                    {"kerberosPrincipal": secure_hdfs.alice, "kerberosKeytab": ""}):
        vol = Volume(driver, secrets)
        with pytest.raises(grpc.RpcError) as info:
            vol.stage()
        assert info.value.code() is C.INVALID_ARGUMENT, info.value.details()
        assert "kerberos" in (info.value.details() or "").lower()
        assert vol.leftovers() == []


# -- ticket lifetimes --------------------------------------------------------------------------

@needs_fuse
def test_a_mount_keeps_reading_across_ticket_lifetimes(secure_hdfs: SecureHdfs,
                                                       driver: KerberosDriver,
                                                       data: dict[str, bytes]) -> None:
    """Every round, after her ticket has expired, the NameNode connections are aborted:
    the mount's next read must log in from the keytab again (a KDC login during that
    read), and so must our admin client's next connection."""
    hdfs, kdc, su = secure_hdfs, secure_hdfs.kdc, secure_hdfs.superuser
    assert kdc.max_life_of("alice") == TICKET_LIFE
    assert drop_connections(hdfs.cluster.port) >= 0       # ss -K works here (SOCK_DESTROY)
    vol = Volume(driver, secret(hdfs.alice, hdfs.alice_keytab))
    vol.stage()
    rounds = 4
    log: list[tuple[float, int, int, int]] = []   # (t, mount logins, admin logins, dropped)
    try:
        vol.publish()
        t0 = last = time.monotonic()
        for i in range(rounds):
            dropped = 0
            if i:
                time.sleep(max(0.0, last + TICKET_LIFE + 2 - time.monotonic()))
                dropped = drop_connections(hdfs.cluster.port)
                assert dropped, "no connection to the NameNode to drop"
            body = os.urandom(1 * MiB + i)
            _write(su, f"{DATASET}/round-{i}", body)        # as hdfs/localhost, not alice
            before = kdc.issued("alice")
            assert Path(vol.target, f"round-{i}").read_bytes() == body, f"round {i}"
            assert Path(vol.target, "part-1").read_bytes() == data["part-1"]
            mount_logins = kdc.issued("alice") - before
            before = kdc.issued("alice")
            user, stats = _admin_call(hdfs, hdfs.alice, hdfs.alice_keytab, "getFsStats",
                                      nn.GetFsStatusRequestProto(), nn.GetFsStatsResponseProto)
            assert user == hdfs.alice and stats.capacity > 0
            admin_logins = kdc.issued("alice") - before
            last = time.monotonic()
            log.append((round(last - t0, 1), mount_logins, admin_logins, dropped))
        print(f"ticket life {TICKET_LIFE}s; rounds (t, KDC logins by the mount, by the admin "
              f"client, connections dropped): {log}")
        assert log[-1][0] - log[0][0] >= (rounds - 1) * TICKET_LIFE
        assert all(m > 0 for _, m, _, _ in log[1:]), (
            f"the mount did not log in again after its ticket expired: {log}")
        assert all(a > 0 for _, _, a, _ in log[1:]), (
            f"the admin client did not log in again after its ticket expired: {log}")
    finally:
        vol.close()
    assert vol.leftovers() == []


def drop_connections(port: int) -> int:
    """Abort every TCP connection to ``127.0.0.1:port`` (``ss -K``: the kernel's
    SOCK_DESTROY, as a NameNode restart or a network cut does to its clients);
    return how many there were."""
    out = subprocess.run(["ss", "-K", "-t", "-n", "dst", "127.0.0.1", "dport", "=", f":{port}"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        pytest.fail(f"ss -K failed ({out.returncode}): {out.stderr.strip()}")
    return sum(1 for line in out.stdout.splitlines()[1:] if line.strip())


# -- secrets stay secret -----------------------------------------------------------------------

def _keytab_keys(data: bytes) -> list[bytes]:
    """The raw keys in a keytab (test-only parser: MIT format 0x0502)."""
    keys, pos = [], 2
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big", signed=True)
        pos += 4
        if size <= 0:
            if size == 0:
                break
            pos -= size
            continue
        e, pos = data[pos:pos + size], pos + size
        n, p = int.from_bytes(e[0:2], "big"), 2
        p += 2 + int.from_bytes(e[p:p + 2], "big")                  # realm
        for _ in range(n):
            p += 2 + int.from_bytes(e[p:p + 2], "big")              # components
        p += 4 + 4 + 1 + 2                                          # type, time, kvno, enctype
        klen = int.from_bytes(e[p:p + 2], "big")
        keys.append(e[p + 2:p + 2 + klen])
    return keys


def _needles(keytab: bytes) -> dict[str, bytes]:
    out = {"keytab": keytab, "keytab base64": base64.b64encode(keytab),
           "keytab hex": keytab.hex().encode()}
    for i, key in enumerate(_keytab_keys(keytab)):
        assert len(key) >= 16
        out[f"key {i}"] = key
        out[f"key {i} hex"] = key.hex().encode()
        out[f"key {i} base64"] = base64.b64encode(key).rstrip(b"=")
    return out


def _processes() -> dict[str, bytes]:
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for what in ("cmdline", "environ"):
            try:
                out[f"/proc/{pid}/{what}"] = Path("/proc", pid, what).read_bytes()
            except OSError:
                pass
    return out


def _files(*roots: Path, skip: tuple[Path, ...] = ()) -> Iterator[Path]:
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not os.path.ismount(os.path.join(dirpath, d))]
            for name in filenames:
                p = Path(dirpath, name)
                if p not in skip and p.is_file():
                    yield p


def _ticket_caches() -> set[str]:
    tmp = Path(os.environ.get("TMPDIR") or "/tmp")
    return {str(p) for d in {tmp, Path("/tmp")} for p in d.glob("krb5cc*")}


@needs_fuse
def test_keytab_and_keys_appear_in_no_log_state_or_process(secure_hdfs: SecureHdfs,
                                                          driver: KerberosDriver,
                                                          data: dict[str, bytes]) -> None:
    keytab = Path(secure_hdfs.alice_keytab).read_bytes()
    needles = _needles(keytab)
    caches_before = _ticket_caches()
    vol = Volume(driver, secret(secure_hdfs.alice, keytab))
    vol.stage()
    try:
        vol.publish()
        assert Path(vol.target, "part-1").read_bytes() == data["part-1"]
        daemon = vol.daemon_pid()
        procs = _processes()                       # every process, the mount's daemon included
        assert f"/proc/{daemon}/cmdline" in procs and f"/proc/{driver.proc.pid}/cmdline" in procs
        cred = driver.state_dir / "credentials" / f"{vol.key}.keytab"
        assert cred.read_bytes() == keytab and (cred.stat().st_mode & 0o777) == 0o600
        live = {str(p): p.read_bytes() for p in _files(driver.workdir, skip=(cred,))}
    finally:
        vol.close()
    after = {str(p): p.read_bytes() for p in _files(
        driver.workdir, Path(secure_hdfs.cluster.data_dir), secure_hdfs.kdc.root,
        skip=tuple(secure_hdfs.kdc.keytab_dir.glob("*")))}
    after = {k: v for k, v in after.items() if not k.endswith(".keytab") and
             "/principal" not in k and not k.endswith("/stash")}   # the KDC's own database
    found = [f"{what} in {where}"
             for where, text in {**procs, **live, **after}.items()
             for what, needle in needles.items() if needle in text]
    assert found == []
    assert _ticket_caches() <= caches_before, "a ticket cache file was written"
    assert vol.leftovers() == []


# -- our admin RPC client against the secure NameNode ----------------------------------------

def _admin_call(hdfs: SecureHdfs, principal: str, keytab: str, method: str, request: Any,
                response_cls: Any, server_principal: str | None = None) -> tuple[str, Any]:
    """One ClientProtocol call on a fresh connection authenticated by rpc_sasl."""
    with socket.create_connection(("127.0.0.1", hdfs.cluster.port), timeout=30) as sock:
        user = rpc_sasl.authenticate(sock, principal=principal, keytab=keytab,
                                     server_principal=server_principal or
                                     hdfs.setup.client_conf["dfs.namenode.kerberos.principal"])
        cid = uuid.uuid4().bytes
        hdr = rpc_pb2.RpcRequestHeaderProto(
            rpcKind=rpc_pb2.RPC_PROTOCOL_BUFFER, rpcOp=0,
            callId=w.CALL_ID_CONNECTION_CONTEXT, clientId=cid, retryCount=-1)
        ctx = rpc_pb2.IpcConnectionContextProto(protocol=w.CLIENT_PROTOCOL)
        ctx.userInfo.effectiveUser = user
        call = rpc_pb2.RpcRequestHeaderProto(rpcKind=rpc_pb2.RPC_PROTOCOL_BUFFER, rpcOp=0,
                                             callId=0, clientId=cid, retryCount=0)
        req = rpc_pb2.RequestHeaderProto(methodName=method,
                                         declaringClassProtocolName=w.CLIENT_PROTOCOL,
                                         clientProtocolVersion=w.CLIENT_PROTOCOL_VERSION)
        sock.sendall(w.build_frame(hdr.SerializeToString(), ctx.SerializeToString()) +
                     w.build_frame(call.SerializeToString(), req.SerializeToString(),
                                   request.SerializeToString()))
        frame = w.recv_frame(sock)
        raw, pos = w.split_delimited(frame, 0)
        head = rpc_pb2.RpcResponseHeaderProto()
        head.ParseFromString(bytes(raw))
        if head.status != rpc_pb2.RpcResponseHeaderProto.SUCCESS:
            raise errors.from_remote(head.exceptionClassName, head.errorMsg)
        body, _ = w.split_delimited(frame, pos)
        resp = response_cls()
        resp.ParseFromString(bytes(body))
        return user, resp


def _fs_stats(hdfs: SecureHdfs) -> Any:
    return _admin_call(hdfs, hdfs.setup.service_principal, hdfs.setup.keytab, "getFsStats",
                       nn.GetFsStatusRequestProto(), nn.GetFsStatsResponseProto)[1]


def test_admin_rpc_sasl_gssapi_against_the_secure_namenode(secure_hdfs: SecureHdfs,
                                                           bad_keytabs: dict[str, Any],
                                                           tmp_path: Path) -> None:
    hdfs, kdc = secure_hdfs, secure_hdfs.kdc
    user, stats = _admin_call(hdfs, hdfs.alice, hdfs.alice_keytab, "getFsStats",
                              nn.GetFsStatusRequestProto(), nn.GetFsStatsResponseProto)
    assert user == hdfs.alice and stats.capacity > 0
    # the NameNode knows her as alice: not the superuser
    with pytest.raises(errors.PermissionDenied, match="user=alice"):
        _admin_call(hdfs, hdfs.alice, hdfs.alice_keytab, "mkdirs", nn.MkdirsRequestProto(
            src="/not-alices", masked={"perm": 0o755}, createParent=True),
            nn.MkdirsResponseProto)
    # a server that is not the configured NameNode principal is refused before any call
    with pytest.raises(errors.PermissionDenied, match="claims to be hdfs/localhost"):
        _admin_call(hdfs, hdfs.alice, hdfs.alice_keytab, "getFsStats",
                    nn.GetFsStatusRequestProto(), nn.GetFsStatsResponseProto,
                    server_principal=kdc.principal("nn/elsewhere"))
    # wrong identities: one sentence each, naming the principal and the cause
    for case, cause in (("stale", "rotated"), ("foreign", "holds alice@"),
                        ("unknown", "does not know"), ("garbage", "not a usable keytab")):
        principal, raw = bad_keytabs[case]
        path = tmp_path / f"{case}.keytab"
        path.write_bytes(raw)
        with pytest.raises(errors.PermissionDenied) as info:
            _admin_call(hdfs, principal, str(path), "getFsStats", nn.GetFsStatusRequestProto(),
                        nn.GetFsStatsResponseProto)
        text = str(info.value)
        assert cause in text and principal in text and not any(t in text for t in REPR_TOKENS)
    # (logging in again once her ticket expired: test_a_mount_keeps_reading_across_...)


def test_admin_client_speaks_kerberos(secure_hdfs: SecureHdfs) -> None:
    """The product's AdminRpcClient (quotas, capacity, snapshots) on the secure cluster."""
    from hdfs_client.admin_rpc import AdminRpcClient

    with AdminRpcClient(secure_hdfs.uri, config=secure_hdfs.client_config(),
                        kerberos_principal=secure_hdfs.setup.service_principal,
                        kerberos_keytab=secure_hdfs.setup.keytab) as admin:
        assert admin.fs_stats().capacity == _fs_stats(secure_hdfs).capacity
        secure_hdfs.superuser.mkdirs("/quota-krb")
        admin.set_quota("/quota-krb", None, 64 * MiB)
        assert secure_hdfs.superuser.content_summary("/quota-krb").space_quota == 64 * MiB


@needs_fuse
def test_create_volume_with_a_keytab_controller_secret(secure_hdfs: SecureHdfs,
                                                       driver: KerberosDriver) -> None:
    """CreateVolume on a Kerberos cluster: a real space quota, set over SASL GSSAPI.

    Quotas are for HDFS superusers only, so the provisioner's Secret is the
    service principal's keytab (a real cluster gives it a principal mapped to
    the superuser or to a member of ``dfs.permissions.superusergroup``)."""
    sec = secret(secure_hdfs.setup.service_principal, secure_hdfs.setup.keytab)
    ctl = driver.controller()
    vol = ctl.CreateVolume(csi_pb2.CreateVolumeRequest(
        name=f"pvc-krb-{uuid.uuid4().hex[:8]}", volume_capabilities=[cap()], secrets=sec,
        capacity_range=csi_pb2.CapacityRange(required_bytes=32 * MiB)), timeout=90).volume
    try:
        path = vol.volume_context.get("path") or vol.volume_id.split("://", 1)[1].split("/", 1)[1]
        path = path if path.startswith("/") else "/" + path
        assert secure_hdfs.superuser.content_summary(path).space_quota == 32 * MiB
    finally:
        ctl.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id, secrets=sec),
                         timeout=90)
    with pytest.raises(errors.NotFound):
        secure_hdfs.superuser.get_status(path)
    assert sec["kerberosKeytab"] not in driver.log_text()
    assert list((driver.state_dir / "credentials").glob("*.keytab")) == []
