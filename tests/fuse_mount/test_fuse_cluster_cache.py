"""The mount's use of HDFS's own cluster cache (``--cache-pool``): directives per
directory, renewed, adopted by a successor daemon, removed at unmount; on both
backends, and on Hadoop's real DataNodes the blocks really end up cached."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from fuse_mount.cluster_cache import ClusterCache
from hdfs_client import errors
from hdfs_client.admin_rpc import AdminRpcClient
from hdfs_csi_pb.hadoop import namenode_pb2 as nn
from fuse_kit import hdfs_dir


@pytest.fixture
def admin(dfs):
    """The superuser's RPC client (the tests run as the user that started the cluster)."""
    client = AdminRpcClient(dfs.uri)
    yield client
    client.close()


@pytest.fixture
def pool(admin):
    """A fresh cache pool anyone may use; removed (with its directives) afterwards."""
    name = f"pool-{uuid.uuid4().hex[:8]}"
    admin.add_cache_pool(name, mode=0o777)
    yield name
    try:
        admin.remove_cache_pool(name)
    except errors.HdfsError:
        pass


def dataset(hdfs) -> str:
    """root: two files; a/ one file; a/b/ one file; c/ only a subdirectory d/ (files);
    e/ empty. Directories holding files: root, a, a/b, c/d."""
    base = hdfs_dir(hdfs, "cc")
    for rel, size in (("x.bin", 3000), ("y.bin", 5000), ("a/f", 700), ("a/b/g", 1500),
                      ("c/d/h", 4096)):
        hdfs.write_file(f"{base}/{rel}", os.urandom(size), create_parent=True)
    hdfs.mkdirs(f"{base}/e")
    return base


def ours(admin, pool: str) -> dict[str, int]:
    return {d.path: d.id for d in admin.list_cache_directives(pool=pool)}


def wait_for(predicate, timeout: float = 30.0, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def test_one_directive_per_directory_holding_files_then_removed(hdfs, admin, pool):
    base = dataset(hdfs)
    cc = ClusterCache(hdfs, base, pool, ttl_s=600)
    before = time.time() * 1000
    cc.start()
    assert cc.pinned.wait(30)
    listed = {d.path: d for d in admin.list_cache_directives(pool=pool)}
    assert sorted(listed) == sorted([base, f"{base}/a", f"{base}/a/b", f"{base}/c/d"])
    for d in listed.values():
        assert before + 590_000 <= d.expiry_ms <= time.time() * 1000 + 600_000
        assert d.files_needed == (2 if d.path == base else 1)   # not recursive
    assert listed[base].bytes_needed == 8000
    cc.stop()
    assert ours(admin, pool) == {}
    assert cc.errors == 0


def test_renewal_moves_the_expiry_and_adds_back_a_vanished_directive(hdfs, admin, pool):
    base = dataset(hdfs)
    cc = ClusterCache(hdfs, base, pool, ttl_s=900)
    cc.start()
    assert cc.pinned.wait(30)
    first = ours(admin, pool)
    expiry = {d.path: d.expiry_ms for d in admin.list_cache_directives(pool=pool)}
    cc.ttl_s = 1800
    admin.remove_cache_directive(first[f"{base}/a"])   # an administrator removes one
    cc.renew()
    now = ours(admin, pool)
    assert set(now) == set(first)
    assert now[f"{base}/a"] != first[f"{base}/a"]                   # added again, new id
    assert {p: i for p, i in now.items() if p != f"{base}/a"} == \
        {p: i for p, i in first.items() if p != f"{base}/a"}        # the others renewed
    later = {d.path: d.expiry_ms for d in admin.list_cache_directives(pool=pool)}
    assert all(later[p] >= expiry[p] + 850_000 for p in expiry)
    cc.stop()
    assert ours(admin, pool) == {}


def test_a_successor_adopts_the_directives_instead_of_adding_more(hdfs, admin, pool, tmp_path):
    base = dataset(hdfs)
    state = str(tmp_path / "cluster-cache.json")
    cc = ClusterCache(hdfs, base, pool, ttl_s=600, state_file=state)
    cc.start()
    assert cc.pinned.wait(30)
    first = ours(admin, pool)
    cc.stop(remove=False)              # handover: left for the next daemon
    assert ours(admin, pool) == first
    assert json.loads(Path(state).read_text())["directives"] == first
    nxt = ClusterCache(hdfs, base, pool, ttl_s=600, state_file=state)
    nxt.start()
    assert nxt.pinned.wait(30)
    nxt.renew()
    assert ours(admin, pool) == first  # same ids, none added
    nxt.stop()
    assert ours(admin, pool) == {} and not os.path.exists(state)


def test_a_state_file_of_another_pool_is_not_adopted(hdfs, admin, pool, tmp_path):
    base = dataset(hdfs)
    state = tmp_path / "cluster-cache.json"
    state.write_text(json.dumps({"root": base, "pool": "other", "directives": {base: 424242}}))
    cc = ClusterCache(hdfs, base, pool, ttl_s=600, state_file=str(state))
    cc.start()
    assert cc.pinned.wait(30)
    assert 424242 not in ours(admin, pool).values() and len(ours(admin, pool)) == 4
    cc.stop()


def test_an_unknown_pool_is_logged_once_and_changes_nothing(hdfs, admin, caplog):
    base = dataset(hdfs)
    caplog.set_level(logging.ERROR, logger="fuse_mount.cluster_cache")
    cc = ClusterCache(hdfs, base, "no-such-pool", ttl_s=600)
    cc.start()
    assert wait_for(lambda: cc.errors >= 1, 20)
    cc.stop()
    assert not cc.pinned.is_set()
    refusals = [r for r in caplog.records if "refused a directive" in r.getMessage()]
    assert len(refusals) == 1
    assert "hdfs cacheadmin -addPool no-such-pool" in refusals[0].getMessage()
    assert admin.list_cache_directives(path=base) == []


def test_a_user_without_write_on_the_pool_is_refused(dfs, hdfs, admin):
    from hdfs_client import connect

    base = dataset(hdfs)
    hdfs.set_permission(base, 0o755)
    name = f"closed-{uuid.uuid4().hex[:6]}"
    admin.add_cache_pool(name, mode=0o755)    # the superuser's, read-only for others
    try:
        other = connect(dfs.uri, user="alice")
        cc = ClusterCache(other, base, name, ttl_s=600)
        cc.start()
        assert wait_for(lambda: cc.errors >= 1, 20)
        cc.stop()
        assert admin.list_cache_directives(pool=name) == []
    finally:
        admin.remove_cache_pool(name)


def test_the_datanodes_really_cache_the_dataset(hdfs, admin, pool):
    """The point of it: the NameNode reports the bytes cached and marks the replicas
    cached in block locations (Hadoop: real DataNode caching, mlock aside)."""
    base = hdfs_dir(hdfs, "ccdata")
    hdfs.write_file(f"{base}/big.bin", os.urandom(3 * 1024 * 1024 + 5))   # 4 blocks
    outside = hdfs_dir(hdfs, "ccout")
    hdfs.write_file(f"{outside}/not-covered.bin", os.urandom(1000))
    cc = ClusterCache(hdfs, base, pool, ttl_s=600)
    cc.start()
    assert cc.pinned.wait(30)
    cc.stop(remove=False)

    def cached() -> bool:
        d = [x for x in admin.list_cache_directives(pool=pool) if x.path == base]
        return bool(d) and d[0].bytes_cached == d[0].bytes_needed == 3 * 1024 * 1024 + 5

    assert wait_for(cached, 60, 0.5), admin.list_cache_directives(pool=pool)

    def is_cached(path: str) -> list[list[bool]]:
        r = admin.raw_call("getBlockLocations",
                           nn.GetBlockLocationsRequestProto(src=path, offset=0, length=1 << 40),
                           nn.GetBlockLocationsResponseProto)
        return [list(b.isCached) for b in r.locations.blocks]

    assert is_cached(f"{base}/big.bin") == [[True]] * 4
    assert is_cached(f"{outside}/not-covered.bin") == [[False]]
    for d in admin.list_cache_directives(pool=pool):
        admin.remove_cache_directive(d.id)


def _keeper_child(keeper: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kids = Path(f"/proc/{keeper}/task/{keeper}/children").read_text().split()
        except FileNotFoundError:
            break
        if len(kids) == 1:
            return int(kids[0])
        time.sleep(0.05)
    pytest.skip("not the own FUSE loop (no keeper with one daemon)")


def test_a_mount_keeps_them_across_a_daemon_kill_and_removes_them_at_unmount(
        dfs, hdfs, admin, pool, mount_factory):
    from fuse_mount import mounts

    base = dataset(hdfs)
    m = mount_factory(f"{dfs.uri}{base}", "--cache-pool", pool, "--cache-pool-ttl", "600",
                      metrics=True)
    first = wait_for(lambda: len(ours(admin, pool)) == 4 and ours(admin, pool), 30)
    assert first, m.log_text()[-3000:]
    assert (m.path / "a" / "f").stat().st_size == 700
    daemon = _keeper_child(m.pid)
    os.kill(daemon, signal.SIGKILL)
    assert wait_for(lambda: _keeper_child(m.pid) != daemon, 30)
    assert len((m.path / "x.bin").read_bytes()) == 3000      # served by the successor
    assert wait_for(lambda: "renewing 4 directive(s)" in m.log_text(), 30), m.log_text()[-3000:]
    assert ours(admin, pool) == first                        # adopted, not added again
    mounts.unmount(str(m.path), timeout=20)
    assert wait_for(lambda: ours(admin, pool) == {}, 30), m.log_text()[-3000:]
