"""Snapshots: frozen, read-only views under ``<dir>/.snapshot/<name>``."""

from __future__ import annotations

import os

import pytest

from hdfs_client import connect, errors
from hdfs_client.admin_rpc import AdminRpcClient

pytestmark = pytest.mark.timeout(120)

BS = 64 * 1024


@pytest.fixture
def env(minidfs_factory, tmp_path):
    dfs = minidfs_factory(block_size=BS, data_dir=tmp_path / "dfs")
    c = connect(dfs.uri)
    admin = AdminRpcClient(dfs.uri)
    yield dfs, c, admin
    admin.close()
    c.close()


def test_snapshot_view_is_frozen(env) -> None:
    _, c, admin = env
    v1 = os.urandom(2 * BS + 500)
    c.write_file("/ds/train/part-0", v1)
    c.write_file("/ds/train/part-1", b"one")
    c.write_file("/ds/meta", b"meta-v1")
    admin.allow_snapshot("/ds")
    assert admin.create_snapshot("/ds", "epoch1") == "/ds/.snapshot/epoch1"

    # change everything in the live tree
    with c.append("/ds/train/part-0") as w:
        w.write(b"appended")
    c.write_file("/ds/train/part-1", b"two", overwrite=True)
    c.delete("/ds/meta")
    c.write_file("/ds/new", b"new")
    c.rename("/ds/train", "/ds/train-renamed")

    snap = "/ds/.snapshot/epoch1"
    assert c.get_status(snap).is_dir
    assert sorted(s.name for s in c.list_dir(snap)) == ["meta", "train"]
    assert sorted(s.name for s in c.list_dir(snap + "/train")) == ["part-0", "part-1"]
    assert c.get_status(snap + "/train/part-0").length == len(v1)
    assert c.read_file(snap + "/train/part-0") == v1
    with c.open_reader(snap + "/train/part-0") as r:
        assert r.read_range(BS - 10, 100) == v1[BS - 10:BS + 90]
    assert c.read_file(snap + "/train/part-1") == b"one"
    assert c.read_file(snap + "/meta") == b"meta-v1"
    assert c.read_file("/ds/train-renamed/part-0") == v1 + b"appended"
    assert [s.name for s in c.list_dir("/ds/.snapshot")] == ["epoch1"]


def test_snapshots_are_read_only_and_protect_their_directory(env) -> None:
    _, c, admin = env
    c.write_file("/ro/f", b"x")
    admin.allow_snapshot("/ro")
    admin.create_snapshot("/ro", "s")
    for op in (lambda: c.write_file("/ro/.snapshot/s/g", b"y"),
               lambda: c.delete("/ro/.snapshot/s/f"),
               lambda: c.mkdirs("/ro/.snapshot/s/d"),
               lambda: c.set_permission("/ro/.snapshot/s/f", 0o777),
               lambda: c.rename("/ro/.snapshot/s/f", "/ro/g")):
        with pytest.raises(errors.HdfsError):
            op()
    with pytest.raises(errors.HdfsIOError):  # SnapshotException: has snapshots
        c.delete("/ro", recursive=True)
    with pytest.raises(errors.HdfsError):
        admin.create_snapshot("/ro", "s")  # duplicate name
    with pytest.raises(errors.NotFound):
        c.get_status("/ro/.snapshot/nope/f")
    with pytest.raises(errors.HdfsError):
        admin.create_snapshot("/not-snapshottable-" + "x", "s")


def test_delete_snapshot_releases_blocks(env) -> None:
    dfs, c, admin = env
    payload = os.urandom(3 * BS)
    c.write_file("/rel/f", payload)
    admin.allow_snapshot("/rel")
    admin.create_snapshot("/rel", "s1")
    block_ids = [b.id for b in dfs.ns._resolve("/rel/f").last.blocks]
    c.delete("/rel/f")
    dn = dfs.datanodes[0]
    assert all(dn.visible_length(b) == BS for b in block_ids)  # pinned by the snapshot
    assert c.read_file("/rel/.snapshot/s1/f") == payload
    admin.delete_snapshot("/rel", "s1")
    dfs.trigger_heartbeats()  # replicas go at the DataNode's next heartbeat
    assert all(dn.visible_length(b) is None for b in block_ids)
    with pytest.raises(errors.NotFound):
        c.get_status("/rel/.snapshot/s1")
    c.delete("/rel", recursive=True)  # no snapshots left: deletable


def test_snapshots_survive_restart(env, minidfs_factory, tmp_path) -> None:
    dfs, c, admin = env
    v1 = os.urandom(BS + 3)
    c.write_file("/pers/f", v1)
    admin.allow_snapshot("/pers")
    admin.create_snapshot("/pers", "a")
    c.write_file("/pers/f", b"v2", overwrite=True)
    dfs.stop()
    dfs2 = minidfs_factory(block_size=BS, data_dir=tmp_path / "dfs")
    with connect(dfs2.uri) as c2:
        assert c2.read_file("/pers/.snapshot/a/f") == v1
        assert c2.read_file("/pers/f") == b"v2"
