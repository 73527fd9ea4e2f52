"""The HdfsClient seam (hdfs_client.connect + admin_rpc) against both backends (``dfs``:
minidfs and Apache Hadoop's own HDFS)."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from hdfs_client import FsStats, connect, errors
from hdfs_client.admin_rpc import AdminRpcClient, _addresses

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def client(dfs):
    with connect(dfs.uri) as c:
        yield c


def test_every_seam_operation(client, dfs) -> None:
    c = client
    c.mkdirs("/seam/d", permission=0o750)
    assert c.get_status("/seam/d").permission == 0o750
    with c.create("/seam/d/f", permission=0o600, replication=1, block_size=1 << 20) as w:
        assert w.write(b"hello ") == 6
        w.hsync()
        w.write(memoryview(b"world"))
    st = c.get_status("/seam/d/f")
    assert (st.length, st.permission, st.replication, st.block_size, st.name) == \
        (11, 0o600, 1, 1 << 20, "f")
    with c.append("/seam/d/f") as w:
        w.write(b"!")
    with c.open_reader("/seam/d/f") as r:
        assert r.size == 12
        assert r.read_range(6, 100) == b"world!"  # short only at end of file
        assert r.read_range(12, 5) == b"" and r.read_range(3, 0) == b""
    assert c.exists("/seam/d/f") and not c.exists("/seam/nope")
    assert [s.path for s in c.list_dir("/seam/d")] == ["/seam/d/f"]
    c.write_file("/seam/x/y/z", b"deep")  # create_parent by default
    c.rename("/seam/x/y/z", "/seam/x/z")
    assert c.read_file("/seam/x/z") == b"deep"
    c.set_permission("/seam/x/z", 0o640)
    c.set_owner("/seam/x/z", "someone", "group")
    c.set_times("/seam/x/z", 5000, 6000)
    st = c.get_status("/seam/x/z")
    assert (st.permission, st.owner, st.group, st.mtime_ms, st.atime_ms) == \
        (0o640, "someone", "group", 5000, 6000)
    assert c.set_replication("/seam/x/z", 1) is True
    assert c.recover_lease("/seam/x/z") is True  # closed file: nothing to recover
    s = c.content_summary("/seam")
    assert (s.file_count, s.directory_count, s.length) == (2, 4, 16)
    c.set_quota("/seam", 100, 1 << 30)
    s = c.content_summary("/seam")
    assert (s.quota, s.space_quota) == (100, 1 << 30)
    c.set_quota("/seam", None, -1)
    s = c.content_summary("/seam")
    assert (s.quota, s.space_quota) == (100, -1)
    stats = c.fs_stats()
    assert isinstance(stats, FsStats) and stats.capacity >= stats.remaining > 0
    assert c.delete("/seam", recursive=True) is True


def test_remote_errors_map_to_domain_errors(client) -> None:
    c = client
    c.write_file("/err/file", b"x")
    c.mkdirs("/err/dir/sub")
    cases = [
        (errors.NotFound, lambda: c.get_status("/err/missing")),
        (errors.NotFound, lambda: c.open_reader("/err/missing")),
        (errors.AlreadyExists, lambda: c.create("/err/file")),
        (errors.AlreadyExists, lambda: c.mkdirs("/err/file")),
        (errors.NotEmpty, lambda: c.delete("/err/dir")),
        (errors.NotADirectory, lambda: c.mkdirs("/err/file/x")),
    ]
    for cls, op in cases:
        with pytest.raises(cls):
            op()


@pytest.mark.minidfs_only
def test_injected_remote_errors_map_to_domain_errors(client, dfs) -> None:
    """Classes that are awkward to provoke for real: injected by minidfs with exact names."""
    c = client
    c.write_file("/err-injected", b"x")
    injected = {
        "org.apache.hadoop.fs.InvalidPathException": errors.InvalidPath,
        "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException": errors.LeaseConflict,
        "org.apache.hadoop.hdfs.protocol.NSQuotaExceededException": errors.QuotaExceeded,
        "org.apache.hadoop.security.AccessControlException": errors.PermissionDenied,
        "java.lang.UnsupportedOperationException": errors.Unsupported,
        "org.apache.hadoop.hdfs.server.namenode.SafeModeException": errors.HdfsIOError,
    }
    for java_class, cls in injected.items():
        dfs.faults.fail_next("getFileInfo", 1, java_class, "injected")
        with pytest.raises(cls) as info:
            c.get_status("/err-injected")
        assert "injected" in str(info.value)


def test_client_panic_becomes_hdfs_io_error(minidfs_factory, monkeypatch) -> None:
    """hdfs-native panics (a BaseException) on a new block without storage types; the
    seam must turn that into an ordinary HdfsIOError."""
    from minidfs.namenode import NameNode

    dfs = minidfs_factory()
    with connect(dfs.uri) as c:
        c.write_file("/p", b"data")
        original = NameNode._located_block

        def broken(self, lb, out):
            original(self, lb, out)
            del out.storageTypes[:]
            del out.storageIDs[:]

        monkeypatch.setattr(NameNode, "_located_block", broken)
        with pytest.raises(errors.HdfsIOError) as info:
            c.write_file("/q", b"data")
        assert type(info.value.__cause__).__name__ == "PanicException"


def test_connect_user_is_the_effective_user(dfs) -> None:
    with connect(dfs.uri) as root:
        root.mkdirs("/users")
        root.set_permission("/users", 0o777)
    with connect(dfs.uri, user="alice") as alice:
        alice.write_file("/users/a", b"1")
        assert alice.get_status("/users/a").owner == "alice"


def test_open_for_write_elsewhere_is_a_lease_conflict(dfs) -> None:
    with connect(dfs.uri) as a, connect(dfs.uri) as b:
        w = a.create("/lease-seam")
        w.write(b"x")
        try:
            with pytest.raises(errors.LeaseConflict):
                b.append("/lease-seam")
        finally:
            w.close()


# -- AdminRpcClient ------------------------------------------------------------------
def test_admin_client_kerberos_on_a_cluster_without_security(dfs, tmp_path) -> None:
    """A keytab against a SIMPLE NameNode: refused in words, as Hadoop's client does,
    unless ipc.client.fallback-to-simple-auth-allowed (then it goes on as SIMPLE).
    The real SASL GSSAPI login is tested against a secure cluster in tests/kerberos."""
    keytab = tmp_path / "x.keytab"
    keytab.write_bytes(b"\x05\x02" + bytes(64))
    with pytest.raises(ValueError, match="go together"):
        AdminRpcClient(dfs.uri, kerberos_principal="hdfs/x@REALM")
    with AdminRpcClient(dfs.uri, kerberos_principal="trainer/x@REALM",
                        kerberos_keytab=str(keytab)) as admin:
        with pytest.raises(errors.Unsupported,
                           match="does not use Kerberos.*fallback-to-simple-auth-allowed"):
            admin.fs_stats()
    with AdminRpcClient(dfs.uri, kerberos_principal="trainer/x@REALM",
                        kerberos_keytab=str(keytab),
                        config={"ipc.client.fallback-to-simple-auth-allowed": "true"}) as admin:
        assert admin.fs_stats().capacity > 0
        assert admin.get_file_info("/").is_dir


def test_admin_client_is_thread_safe(dfs) -> None:
    admin = AdminRpcClient(dfs.uri)
    failures: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(15):
                path = f"/adm/t{i}"
                if j == 0:
                    with connect(dfs.uri) as c:
                        c.mkdirs(path)
                admin.set_quota(path, 1000 + j, None)
                assert admin.fs_stats().capacity > 0
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    with connect(dfs.uri) as c:
        assert all(c.content_summary(f"/adm/t{i}").quota == 1014 for i in range(6))
    admin.close()


def test_admin_client_reconnects_and_fails_over(minidfs_factory, tmp_path) -> None:
    dfs = minidfs_factory(data_dir=tmp_path / "dfs")
    with connect(dfs.uri) as c:
        c.mkdirs("/snapdir")
    admin = AdminRpcClient(dfs.uri)
    admin.allow_snapshot("/snapdir")
    assert admin.create_snapshot("/snapdir", "one") == "/snapdir/.snapshot/one"
    dfs.restart()  # the NameNode goes away and comes back on the same port
    admin.delete_snapshot("/snapdir", "one")
    admin.close()
    # HA nameservice: the first NameNode refuses connections, the second answers
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    config = {"dfs.ha.namenodes.ns1": "nn1,nn2",
              "dfs.namenode.rpc-address.ns1.nn1": f"127.0.0.1:{dead_port}",
              "dfs.namenode.rpc-address.ns1.nn2": f"127.0.0.1:{dfs.port}"}
    assert _addresses("ns1", config) == [("127.0.0.1", dead_port), ("127.0.0.1", dfs.port)]
    with AdminRpcClient("hdfs://ns1", config=config) as ha:
        assert ha.fs_stats().capacity > 0
    with AdminRpcClient(f"hdfs://127.0.0.1:{dead_port}", timeout=2) as nobody, \
            pytest.raises(errors.HdfsIOError):
        nobody.fs_stats()


def test_admin_errors_are_domain_errors(dfs) -> None:
    with AdminRpcClient(dfs.uri) as admin:
        with pytest.raises(errors.NotFound):
            admin.set_quota("/no/such/dir", 10, None)
        with pytest.raises(errors.HdfsIOError):  # SnapshotException
            admin.create_snapshot("/", "x")
        with pytest.raises(ValueError):
            admin.set_quota("/", -5, None)
        assert os.environ.get("HADOOP_CONF_DIR") is None  # fixtures keep Hadoop config out


def test_own_statuses_where_our_client_can_log_in() -> None:
    """File ids come from our RPC client wherever it can talk to the NameNode."""
    from hdfs_client.native import own_rpc_usable

    assert own_rpc_usable("hdfs", {}, None)
    assert not own_rpc_usable("viewfs", {}, None)
    assert not own_rpc_usable("hdfs", {"hadoop.security.authentication": "kerberos"}, None)
    assert own_rpc_usable("hdfs", {}, "alice@R", "/k.keytab")
    assert not own_rpc_usable("hdfs", {}, "alice@R", None)          # ticket cache only
    assert not own_rpc_usable("hdfs", {"hadoop.rpc.protection": "privacy"}, "alice@R", "/k")
    assert own_rpc_usable("hdfs", {"hadoop.rpc.protection": "privacy, authentication"},
                          "alice@R", "/k")


def test_unreachable_says_why_and_leaves_nameservices_to_the_client(dfs) -> None:
    from hdfs_client.reach import unreachable

    assert unreachable(dfs.uri) is None
    assert unreachable("hdfs://ns1/x", {"dfs.ha.namenodes.ns1": "nn1,nn2"}) is None
    assert unreachable("viewfs://cluster/x") is None
    assert "does not resolve" in (unreachable("hdfs://no-such-host.invalid:8020") or "")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert "refused" in (unreachable(f"hdfs://127.0.0.1:{port}") or "")
    assert unreachable(f"hdfs://[::1]:{port}") is not None   # refused, or no IPv6 here
