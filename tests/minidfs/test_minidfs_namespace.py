"""Namespace operations through hdfs-native (via the seam and directly) and raw RPC."""

from __future__ import annotations

import time

import pytest

from hdfs_client import errors
from hdfs_csi_pb.hadoop import namenode_pb2 as nn

pytestmark = pytest.mark.timeout(120)


def test_get_file_info_fields(hdfs, dfs) -> None:
    root = hdfs.get_status("/")
    assert root.is_dir and root.owner == dfs.superuser and root.group == "supergroup"
    before = int(time.time() * 1000) - 5000
    hdfs.write_file("/info/f", b"x" * 1000)
    st = hdfs.get_status("/info/f")
    assert (st.length, st.is_dir, st.replication, st.block_size) == (1000, False, 1, 1 << 20)
    assert st.permission == 0o644 and st.mtime_ms >= before
    d = hdfs.get_status("/info")
    assert d.is_dir and d.length == 0
    with pytest.raises(errors.NotFound):
        hdfs.get_status("/info/nope")
    with pytest.raises(errors.NotFound):  # an ancestor is a file
        hdfs.get_status("/info/f/below")


def test_mkdirs_semantics(hdfs, raw) -> None:
    hdfs.mkdirs("/mk/a/b/c", permission=0o750)
    assert hdfs.get_status("/mk/a/b/c").permission == 0o750
    hdfs.mkdirs("/mk/a/b/c")  # existing directory: fine
    raw.mkdirs("/mk/single", 0o755, False)
    with pytest.raises(FileNotFoundError):
        raw.mkdirs("/mk/missing/child", 0o755, False)
    hdfs.write_file("/mk/file", b"")
    with pytest.raises(errors.AlreadyExists):
        hdfs.mkdirs("/mk/file")
    with pytest.raises(errors.NotADirectory):
        hdfs.mkdirs("/mk/file/sub")
    with pytest.raises(errors.HdfsError):
        hdfs.mkdirs("/mk/bad/../x")


def test_listing_thousands_of_entries_pages(minidfs_factory) -> None:
    from minidfs_kit import native_as

    from hdfs_client import connect

    dfs = minidfs_factory(listing_limit=250)
    raw = native_as(dfs.uri)
    raw.mkdirs("/big", 0o755, True)
    names = [f"f{i:05d}" for i in range(2000)] + ["zé", "Zeta", "a b"]
    for n in names:
        raw.create(f"/big/{n}").close()
    with connect(dfs.uri) as c:
        listed = [s.name for s in c.list_dir("/big")]
    assert listed == sorted(names, key=lambda s: s.encode())
    assert len(listed) == len(names)
    # listing a file returns just that file
    assert [s.path for s in raw.list_status("/big/f00001")] == ["/big/f00001"]
    # 2003 entries at 250 per page = 9 getListing pages (+1 for the file listing)
    assert dfs.faults.calls["getListing"] == 10


def test_listing_is_paged_by_the_server(minidfs_factory, tmp_path) -> None:
    from hdfs_client.admin_rpc import AdminRpcClient

    dfs = minidfs_factory(listing_limit=3)
    from minidfs_kit import native_as

    raw = native_as(dfs.uri)
    for i in range(7):
        raw.create(f"/p/f{i}", _opts()).close()
    admin = AdminRpcClient(dfs.uri)
    page = admin.raw_call("getListing", nn.GetListingRequestProto(src="/p", startAfter=b"",
                                                                  needLocation=False),
                          nn.GetListingResponseProto).dirList
    assert [e.path for e in page.partialListing] == [b"f0", b"f1", b"f2"]
    assert page.remainingEntries == 4
    page = admin.raw_call("getListing", nn.GetListingRequestProto(src="/p", startAfter=b"f5",
                                                                  needLocation=True),
                          nn.GetListingResponseProto).dirList
    assert [e.path for e in page.partialListing] == [b"f6"] and page.remainingEntries == 0
    assert page.partialListing[0].HasField("locations")  # needLocation (Java listFiles)
    missing = admin.raw_call("getListing", nn.GetListingRequestProto(src="/nope", startAfter=b"",
                                                                     needLocation=False),
                             nn.GetListingResponseProto)
    assert not missing.HasField("dirList")
    admin.close()


def _opts():
    import hdfs_native

    return hdfs_native.WriteOptions(create_parent=True)


def test_rename2_posix_semantics(hdfs) -> None:
    hdfs.write_file("/rn/a", b"A")
    hdfs.write_file("/rn/b", b"B")
    hdfs.mkdirs("/rn/dir/sub")
    hdfs.mkdirs("/rn/empty")
    hdfs.rename("/rn/a", "/rn/c")
    assert hdfs.read_file("/rn/c") == b"A" and not hdfs.exists("/rn/a")
    with pytest.raises(errors.AlreadyExists):
        hdfs.rename("/rn/c", "/rn/b")
    hdfs.rename("/rn/c", "/rn/b", overwrite=True)
    assert hdfs.read_file("/rn/b") == b"A"
    with pytest.raises(errors.NotFound):
        hdfs.rename("/rn/missing", "/rn/x")
    with pytest.raises(errors.NotFound):
        hdfs.rename("/rn/b", "/rn/nodir/x")
    with pytest.raises(errors.HdfsIOError):  # overwrite a non-empty directory
        hdfs.rename("/rn/empty", "/rn/dir", overwrite=True)
    with pytest.raises(errors.HdfsIOError):  # into its own subtree
        hdfs.rename("/rn/dir", "/rn/dir/sub/x")
    hdfs.rename("/rn/dir", "/rn/empty", overwrite=True)  # empty dir may be replaced
    assert hdfs.get_status("/rn/empty/sub").is_dir and not hdfs.exists("/rn/dir")


def test_old_rename_moves_into_directories(hdfs, admin) -> None:
    hdfs.write_file("/orn/f", b"1")
    hdfs.mkdirs("/orn/d")

    def rename(src: str, dst: str) -> bool:
        return admin.raw_call("rename", nn.RenameRequestProto(src=src, dst=dst),
                              nn.RenameResponseProto).result

    assert rename("/orn/f", "/orn/d") is True
    assert hdfs.read_file("/orn/d/f") == b"1"
    assert rename("/orn/missing", "/orn/x") is False
    hdfs.write_file("/orn/g", b"2")
    assert rename("/orn/g", "/orn/d/f") is False  # existing file: refused, not thrown
    assert rename("/orn/g", "/orn/h") is True and hdfs.read_file("/orn/h") == b"2"


def test_delete_semantics(hdfs) -> None:
    hdfs.write_file("/del/d/f", b"x")
    assert hdfs.delete("/del/missing") is False
    with pytest.raises(errors.NotEmpty):
        hdfs.delete("/del/d")
    assert hdfs.delete("/del/d", recursive=True) is True
    assert not hdfs.exists("/del/d")
    hdfs.write_file("/del/f", b"x")
    assert hdfs.delete("/del/f") is True


def test_set_attributes(hdfs, admin, raw) -> None:
    hdfs.write_file("/attr/f", b"data")
    hdfs.set_permission("/attr/f", 0o1640)
    assert hdfs.get_status("/attr/f").permission == 0o1640
    hdfs.set_owner("/attr/f", "alice", "staff")
    st = hdfs.get_status("/attr/f")
    assert (st.owner, st.group) == ("alice", "staff")
    hdfs.set_owner("/attr/f", group="other")
    assert (hdfs.get_status("/attr/f").owner, hdfs.get_status("/attr/f").group) == \
        ("alice", "other")
    hdfs.set_times("/attr/f", 1_000_000, 2_000_000)
    st = hdfs.get_status("/attr/f")
    assert (st.mtime_ms, st.atime_ms) == (1_000_000, 2_000_000)
    # Java sends -1 (2^64-1 on the wire) for "leave unchanged"
    admin.raw_call("setTimes", nn.SetTimesRequestProto(src="/attr/f", mtime=2**64 - 1,
                                                       atime=3_000_000),
                   nn.SetTimesResponseProto)
    st = hdfs.get_status("/attr/f")
    assert (st.mtime_ms, st.atime_ms) == (1_000_000, 3_000_000)
    # HDFS stores the factor asked for, even above the number of DataNodes (1 here)...
    assert hdfs.set_replication("/attr/f", 3) is True
    assert hdfs.get_status("/attr/f").replication == 3
    located = admin.raw_call("getBlockLocations", nn.GetBlockLocationsRequestProto(
        src="/attr/f", offset=0, length=10), nn.GetBlockLocationsResponseProto).locations
    assert [len(b.locs) for b in located.blocks] == [1]  # one replica: under-replicated
    # ... checked only against dfs.namenode.replication.min (1) and dfs.replication.max (512)
    for bad, why in ((0, "is less than the required minimum of 1"),
                     (513, "exceeds maximum of 512")):
        with pytest.raises(errors.HdfsIOError) as info:
            hdfs.set_replication("/attr/f", bad)
        assert f"Requested replication factor of {bad} {why} for /attr/f" in str(info.value)
    assert hdfs.get_status("/attr/f").replication == 3
    assert hdfs.set_replication("/attr", 2) is False  # directories: false, like HDFS
    assert hdfs.set_replication("/attr/missing", 2) is False  # a missing path too
    with pytest.raises(errors.NotFound):
        hdfs.set_permission("/attr/missing", 0o600)


def test_content_summary_and_fs_stats(hdfs) -> None:
    hdfs.write_file("/cs/a/f1", b"x" * 3000)
    hdfs.write_file("/cs/a/f2", b"y" * 2000)
    hdfs.mkdirs("/cs/b")
    s = hdfs.content_summary("/cs")
    assert (s.length, s.file_count, s.directory_count) == (5000, 2, 3)
    assert s.space_consumed == 5000 and s.quota == -1 and s.space_quota == -1
    f = hdfs.content_summary("/cs/a/f1")
    assert (f.length, f.file_count, f.directory_count) == (3000, 1, 0)
    stats = hdfs.fs_stats()
    assert stats.capacity > 0 and stats.used >= 5000 and 0 < stats.remaining <= stats.capacity


def test_server_defaults_and_unknown_method(admin, dfs) -> None:
    d = admin.raw_call("getServerDefaults", nn.GetServerDefaultsRequestProto(),
                       nn.GetServerDefaultsResponseProto).serverDefaults
    assert d.blockSize == 1 << 20 and d.bytesPerChecksum == 512 and d.replication == 1
    assert d.checksumType == 2 and not d.encryptDataTransfer
    with pytest.raises(errors.Unsupported) as info:
        admin.raw_call("frobnicate", nn.MsyncRequestProto(), nn.MsyncResponseProto)
    assert info.value.remote_class == "org.apache.hadoop.ipc.RpcNoSuchMethodException"
    # the connection survived the unknown method
    assert admin.fs_stats().capacity > 0


def test_invalid_paths_are_rejected(hdfs) -> None:
    for bad in ("/a:b", "/x/./y"):
        with pytest.raises((errors.InvalidPath, errors.HdfsIOError)):
            hdfs.mkdirs(bad)
    with pytest.raises(errors.HdfsError):
        hdfs.mkdirs("/reserved/.snapshot")


def test_trash_glob_and_acl_status_via_hdfs_native(minidfs_factory) -> None:
    from minidfs_kit import native_as

    dfs = minidfs_factory(trash_interval=10)
    c = native_as(dfs.uri)
    c.mkdirs("/g/a", 0o755, True)
    c.mkdirs("/g/b", 0o755, True)
    with c.create("/g/a/x.txt") as w:
        w.write(b"1")
    assert [s.path for s in c.glob_status("/g/*/x.txt")] == ["/g/a/x.txt"]
    user = dfs.config.superuser
    assert c.trash("/g/a/x.txt") == f"/user/{user}/.Trash/Current/g/a/x.txt"
    assert c.get_file_info(f"/user/{user}/.Trash/Current/g/a/x.txt").length == 1
    acl = c.get_acl_status("/g")
    assert acl.owner == user and acl.entries == []
    with pytest.raises(RuntimeError, match="RpcNoSuchMethodException"):
        c.set_acl("/g", [])
