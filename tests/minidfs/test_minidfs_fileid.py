"""File ids (``fileId`` in ``HdfsFileStatusProto``) as HDFS hands them out.

The FUSE layer keys its disk cache and its open handles on the file id, so
minidfs must allocate ids exactly as HDFS's NameNode does (``INodeId``: the
root is 16385, ``LAST_RESERVED_ID + 1``; every new inode, file or directory,
takes the next id from 16386 on, and the id is taken before the quota check
that may still refuse the inode).  Runs on both backends: the Hadoop run is
what says these expectations are HDFS's.
"""

from __future__ import annotations

import pytest

from hdfs_client import connect, errors
from hdfs_client.admin_rpc import AdminRpcClient

pytestmark = pytest.mark.timeout(240)

ROOT_ID = 16385


def fid(client, path: str) -> int:  # type: ignore[no-untyped-def]
    return int(client.get_status(path).file_id)


def test_ids_of_a_fresh_namespace(dfs_factory) -> None:
    """Root 16385, then one id per new inode in creation order, files and
    directories alike; an existing directory or a refused create takes none."""
    dfs = dfs_factory()
    with connect(dfs.uri) as c:
        assert fid(c, "/") == ROOT_ID
        c.mkdirs("/a")
        assert fid(c, "/a") == ROOT_ID + 1
        c.mkdirs("/b/c/d")  # parents first, top down
        assert [fid(c, p) for p in ("/b", "/b/c", "/b/c/d")] == [ROOT_ID + 2, ROOT_ID + 3,
                                                                ROOT_ID + 4]
        c.write_file("/a/f", b"one")
        assert fid(c, "/a/f") == ROOT_ID + 5
        c.mkdirs("/a")  # exists: no new inode
        with pytest.raises(errors.AlreadyExists):
            c.write_file("/a/f", b"no", overwrite=False)
        c.write_file("/a/f", b"two")  # overwrite: the old inode goes, a new one comes
        assert fid(c, "/a/f") == ROOT_ID + 6
        c.write_file("/x/y/z", b"deep", create_parent=True)
        assert [fid(c, p) for p in ("/x", "/x/y", "/x/y/z")] == [ROOT_ID + 7, ROOT_ID + 8,
                                                                ROOT_ID + 9]
        c.mkdirs("/after")
        assert fid(c, "/after") == ROOT_ID + 10


def test_an_inode_refused_by_a_quota_still_takes_an_id(dfs_factory) -> None:
    """HDFS allocates the id, then adding the inode fails the quota check; the
    parents a ``mkdir -p`` made before the failing one stay."""
    dfs = dfs_factory()
    with connect(dfs.uri) as c, AdminRpcClient(dfs.uri) as admin:
        c.mkdirs("/q")
        base = fid(c, "/q")
        admin.set_quota("/q", 3, None)  # /q itself counts: room for two more inodes
        c.write_file("/q/f", b"1")
        assert fid(c, "/q/f") == base + 1
        with pytest.raises(errors.QuotaExceeded):
            c.mkdirs("/q/d/e/g")  # /q/d fits, /q/d/e does not
        assert fid(c, "/q/d") == base + 2
        assert not c.exists("/q/d/e")
        with pytest.raises(errors.QuotaExceeded):
            c.write_file("/q/g", b"2")
        admin.set_quota("/q", -1, None)
        c.mkdirs("/q/h")
        assert fid(c, "/q/h") == base + 5  # base+3 (/q/d/e) and base+4 (/q/g) were taken


def test_what_keeps_an_id_and_what_gets_a_new_one(dfs) -> None:
    with connect(dfs.uri) as c:
        c.mkdirs("/keep")
        c.write_file("/keep/f", b"data")
        first = fid(c, "/keep/f")
        c.rename("/keep/f", "/keep/g")  # a rename moves the inode
        assert fid(c, "/keep/g") == first
        with c.append("/keep/g") as w:
            w.write(b"more")
        assert fid(c, "/keep/g") == first
        c.set_times("/keep/g", 1000, 1000)
        assert fid(c, "/keep/g") == first
        c.write_file("/keep/g", b"data")  # same name, same length: a new file
        second = fid(c, "/keep/g")
        assert second > first
        c.delete("/keep/g")
        c.write_file("/keep/g", b"data")  # ids are never reused
        assert fid(c, "/keep/g") > second
        listed = {st.path: st.file_id for st in c.list_dir("/keep")}
        assert listed == {"/keep/g": fid(c, "/keep/g")}
        assert fid(c, "/keep") not in (0, ROOT_ID)


@pytest.mark.minidfs_only
def test_ids_survive_a_restart_and_are_not_reused(minidfs_factory, tmp_path) -> None:
    data_dir = tmp_path / "dfs"
    dfs = minidfs_factory(data_dir=data_dir)
    with connect(dfs.uri) as c:
        c.write_file("/r/f", b"x")
        c.write_file("/r/gone", b"x")
        before = fid(c, "/r/f")
        gone = fid(c, "/r/gone")
        c.delete("/r/gone")
    dfs.stop()
    dfs = minidfs_factory(data_dir=data_dir)
    with connect(dfs.uri) as c:
        assert fid(c, "/r/f") == before
        c.write_file("/r/new", b"y")
        assert fid(c, "/r/new") > gone


def test_statuses_with_ids_are_hdfs_natives_plus_the_id(dfs) -> None:
    """get_status / list_dir come from our own getFileInfo / getListing (they carry
    the file id): every other field must be what hdfs-native reports, listings of
    more than one page included."""
    import dataclasses

    with connect(dfs.uri) as c:
        c.mkdirs("/cmp/sticky", permission=0o1777)
        c.mkdirs("/cmp/ünï cödé")
        c.write_file("/cmp/f", b"x" * 300_000)
        for i in range(1005):  # more than one listing page (dfs.ls.limit = 1000)
            c.mkdirs(f"/cmp/many/d{i:04d}")
        w = c.create("/cmp/open")
        try:
            w.write(b"y" * 1000)
            w.hsync()
            for path in ("/", "/cmp", "/cmp/sticky", "/cmp/ünï cödé", "/cmp/f", "/cmp/open"):
                ours = c.get_status(path)
                assert ours.file_id > 0
                assert dataclasses.replace(ours, file_id=0) == c._native_status(path), path
            for path in ("/cmp", "/cmp/many"):
                ours = list(c.list_dir(path))
                assert all(st.file_id > 0 for st in ours)
                assert [dataclasses.replace(st, file_id=0) for st in ours] == \
                    list(c._native_list(path)), path
            assert len({st.file_id for st in c.list_dir("/cmp/many")}) == 1005
            with pytest.raises(errors.NotFound):
                c.get_status("/cmp/nope")
            with pytest.raises(errors.NotFound):
                list(c.list_dir("/cmp/nope"))
        finally:
            w.close()
