"""Restart persistence, crash recovery and on-disk consistency."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from minidfs_kit import native_as

from hdfs_client import connect, errors
from hdfs_client.admin_rpc import AdminRpcClient

pytestmark = pytest.mark.timeout(180)

BS = 64 * 1024


def _snapshot_tree(client, path="/"):
    """Everything observable about a subtree, for before/after comparisons."""
    out = {}
    for st in client.list_dir(path):
        key = st.path
        out[key] = (st.is_dir, st.length, st.permission, st.owner, st.group, st.mtime_ms,
                    st.replication, st.block_size)
        if st.is_dir:
            out.update(_snapshot_tree(client, st.path))
        else:
            out[key + "#data"] = client.read_file(st.path)
    return out


def _populate(client, admin) -> None:
    client.mkdirs("/keep/deep/er", permission=0o700)
    client.write_file("/keep/multi", os.urandom(5 * BS + 77))
    client.write_file("/keep/empty", b"")
    client.write_file("/keep/appended", b"base")
    with client.append("/keep/appended") as w:
        w.write(os.urandom(BS))
    client.write_file("/keep/gone", b"x")
    client.delete("/keep/gone")
    client.write_file("/keep/moved-src", b"moved")
    client.rename("/keep/moved-src", "/keep/deep/moved")
    client.set_owner("/keep/deep", "alice", "staff")
    client.set_times("/keep/multi", 1234567, 7654321)
    admin.set_quota("/keep", 1000, 10 << 30)


def test_restart_preserves_namespace_and_blocks(minidfs_factory, tmp_path) -> None:
    data_dir = tmp_path / "dfs"
    dfs = minidfs_factory(block_size=BS, data_dir=data_dir)
    with connect(dfs.uri) as c, AdminRpcClient(dfs.uri) as admin:
        _populate(c, admin)
        before = _snapshot_tree(c)
        ids = {p: n.id for p, n in ((n.path(), n) for n in dfs.ns.inodes.values())}
    dfs.stop()
    dfs2 = minidfs_factory(block_size=BS, data_dir=data_dir)
    with connect(dfs2.uri) as c:
        assert _snapshot_tree(c) == before
        q = c.content_summary("/keep")
        assert (q.quota, q.space_quota) == (1000, 10 << 30)
        # new inodes continue after the old ones; old ids are kept
        assert {n.path(): n.id for n in dfs2.ns.inodes.values()} == ids
        c.write_file("/keep/new", b"n")
        assert dfs2.ns._resolve("/keep/new").last.id > max(ids.values())


def _crash_copy(src: str, dst: str) -> None:
    """What a SIGKILL leaves: every byte written to the OS, no shutdown checkpoint."""
    shutil.copytree(src, dst)


def test_crash_image_replays_edit_log(minidfs_factory, tmp_path, monkeypatch) -> None:
    from minidfs import namesystem

    monkeypatch.setattr(namesystem, "CHECKPOINT_EVERY", 40)  # force checkpoints mid-run
    data_dir = tmp_path / "dfs"
    dfs = minidfs_factory(block_size=BS, data_dir=data_dir)
    with connect(dfs.uri) as c, AdminRpcClient(dfs.uri) as admin:
        _populate(c, admin)
        for i in range(60):
            c.write_file(f"/many/f{i}", str(i).encode())
        before = _snapshot_tree(c)
    assert os.path.getsize(data_dir / "namenode" / "fsimage.json") > 0
    crash = tmp_path / "crash"
    _crash_copy(str(data_dir), str(crash))
    # a torn record at the end of the edit log (crash in the middle of a write)
    with open(crash / "namenode" / "edits.log", "ab") as f:
        f.write(b'0badc0de {"op":"mkdir","id":99999,"par')
    dfs2 = minidfs_factory(block_size=BS, data_dir=crash)
    with connect(dfs2.uri) as c:
        assert _snapshot_tree(c) == before
        c.mkdirs("/after-crash")  # the truncated log accepts new records
    dfs2.stop()
    dfs3 = minidfs_factory(block_size=BS, data_dir=crash)
    with connect(dfs3.uri) as c:
        assert c.get_status("/after-crash").is_dir


def test_crash_mid_write_keeps_only_durable_bytes(minidfs_process_factory, tmp_path) -> None:
    """SIGKILL while writing: the file comes back closed with exactly the hsync'ed
    prefix (never unfinished bytes); finished files are intact."""
    proc = minidfs_process_factory(block_size=1 << 20, data_dir=tmp_path / "dfs")
    c = native_as(proc.uri)
    done = os.urandom(2 * (1 << 20) + 5)
    with c.create("/done") as w:
        w.write(done)
    synced = os.urandom(300_000)
    w1 = c.create("/synced")
    w1.write(synced)
    w1.hsync()
    w1.write(os.urandom(200_000))  # in flight: acknowledged but never synced
    w2 = c.create("/unsynced")
    w2.write(os.urandom(1 << 20))  # fills block 1 (finalized) ...
    w2.write(os.urandom(1000))     # ... and starts block 2, never synced
    time.sleep(0.5)                # let the DataNode write what it received
    proc.kill()
    proc.restart()
    c2 = native_as(proc.uri)
    with c2.read("/done") as r:
        assert r.read() == done
    st = c2.get_file_info("/synced")
    assert st.length == len(synced)
    with c2.read("/synced") as r:
        assert r.read() == synced
    st = c2.get_file_info("/unsynced")
    assert st.length in (0, 1 << 20)  # only whole finalized blocks may survive
    # recovered files are closed: they can be appended to at once
    with c2.append("/synced") as w:
        w.write(b"!")
    with c2.read("/synced") as r:
        assert r.read() == synced + b"!"
    assert proc.stop() == 0


def test_block_report_repairs_replicas(minidfs_factory, tmp_path) -> None:
    data_dir = tmp_path / "dfs"
    dfs = minidfs_factory(block_size=BS, data_dir=data_dir)
    payload = os.urandom(BS + 100)
    with connect(dfs.uri) as c:
        c.write_file("/r/f", payload)
    dfs.stop()
    finalized = data_dir / "datanode0" / "current" / "finalized"
    blocks = sorted(p for p in finalized.iterdir() if not p.name.endswith(".meta"))
    assert len(blocks) == 2
    with open(blocks[-1], "ab") as f:  # garbage past the committed length
        f.write(b"GARBAGE" * 100)
    orphan = finalized / "blk_999999"
    orphan.write_bytes(b"orphan")
    (finalized / "blk_999999.meta").write_bytes(b"\0\0\0\0")
    dfs2 = minidfs_factory(block_size=BS, data_dir=data_dir)
    with connect(dfs2.uri) as c:
        assert c.read_file("/r/f") == payload
    assert not orphan.exists()
    assert os.path.getsize(blocks[-1]) == 100


def test_missing_meta_is_rebuilt(minidfs_factory, tmp_path) -> None:
    data_dir = tmp_path / "dfs"
    dfs = minidfs_factory(block_size=BS, data_dir=data_dir)
    payload = os.urandom(3000)
    with connect(dfs.uri) as c:
        c.write_file("/m/f", payload)
    dfs.stop()
    for meta in (data_dir / "datanode0" / "current" / "finalized").glob("*.meta"):
        meta.unlink()
    dfs2 = minidfs_factory(block_size=BS, data_dir=data_dir)
    with connect(dfs2.uri) as c:
        assert c.read_file("/m/f") == payload  # hdfs-native verifies the rebuilt CRCs


def test_thousands_of_edits_are_cheap(minidfs_factory) -> None:
    """The journal appends one record per mutation: no quadratic image rewrites."""
    dfs = minidfs_factory()
    c = native_as(dfs.uri)
    t0 = time.perf_counter()
    for i in range(300):
        c.mkdirs(f"/e/d{i}", 0o755, True)
    first = time.perf_counter() - t0
    for i in range(2000):
        dfs.ns.mkdirs(dfs.ns.caller(dfs.config.superuser), f"/bulk/d{i}", 0o755, True)
    t0 = time.perf_counter()
    for i in range(300, 600):
        c.mkdirs(f"/e/d{i}", 0o755, True)
    second = time.perf_counter() - t0
    assert second < first * 3 + 0.5  # cost per mutation does not grow with the namespace
    with pytest.raises(errors.NotFound):
        connect(dfs.uri).get_status("/e/d600")
