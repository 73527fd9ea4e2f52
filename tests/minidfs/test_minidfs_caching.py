"""Centralized Cache Management in minidfs: cache pools, cache directives, their statistics
and ``isCached`` in located blocks, over real sockets through our AdminRpcClient, checked
against the rules of Hadoop 3.x's CacheManager / CacheReplicationMonitor."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from minidfs_kit import seam_as

from hdfs_client import errors
from hdfs_client.admin_rpc import AdminRpcClient
from hdfs_csi_pb.hadoop import namenode_pb2 as nn

pytestmark = pytest.mark.timeout(180)

BS = 64 * 1024
NEVER = (2**63 - 1) // 4          # CachePoolInfo.RELATIVE_EXPIRY_NEVER
UNLIMITED = 2**63 - 1             # CachePoolInfo.LIMIT_UNLIMITED
GROUPS = {"alice": ["staff"], "bob": ["staff"], "carol": []}


@pytest.fixture(scope="module")
def dfs(tmp_path_factory):
    from minidfs import MiniDFS

    with MiniDFS(tmp_path_factory.mktemp("cache"), block_size=BS, datanodes=2,
                 replication=2, groups=GROUPS) as d:
        yield d


@pytest.fixture(scope="module")
def fs(dfs):
    return seam_as(dfs.uri, dfs.superuser)


@pytest.fixture(scope="module")
def admin(dfs):
    with AdminRpcClient(dfs.uri, user=dfs.superuser) as a:
        yield a


@pytest.fixture(scope="module")
def as_user(dfs):
    made: list[AdminRpcClient] = []

    def make(user: str) -> AdminRpcClient:
        made.append(AdminRpcClient(dfs.uri, user=user))
        return made[-1]

    yield make
    for a in made:
        a.close()


def _write(dfs, fs, path: str, data: bytes, replication: int = 2) -> None:
    """Write ``path`` and wait until each block has ``replication`` live replicas."""
    with fs.create(path, overwrite=True, create_parent=True, replication=replication) as w:
        view = memoryview(data)
        while view:
            view = view[w.write(view):]
    deadline = time.monotonic() + 10
    f = dfs.ns._resolve(path).last
    while any(len(dfs.ns.bm.live_locations(b.id)) < replication for b in f.blocks):
        assert time.monotonic() < deadline, f"{path}: replicas never reached {replication}"
        time.sleep(0.05)


def _pools(admin) -> dict[str, nn.CachePoolEntryProto]:
    """Every pool's listCachePools entry, page by page."""
    out: dict[str, nn.CachePoolEntryProto] = {}
    prev = ""
    while True:
        resp = admin.raw_call("listCachePools",
                              nn.ListCachePoolsRequestProto(prevPoolName=prev),
                              nn.ListCachePoolsResponseProto)
        out.update((e.info.poolName, e) for e in resp.entries)
        if not resp.hasMore:
            return out
        prev = resp.entries[-1].info.poolName


def _directive(admin, directive_id: int):
    [d] = [d for d in admin.list_cache_directives() if d.id == directive_id]
    return d


def _locations(admin, path: str) -> nn.GetBlockLocationsResponseProto:
    return admin.raw_call("getBlockLocations",
                          nn.GetBlockLocationsRequestProto(src=path, offset=0, length=2**62),
                          nn.GetBlockLocationsResponseProto)


def _is_cached(admin, path: str) -> list[list[bool]]:
    return [list(b.isCached) for b in _locations(admin, path).locations.blocks]


def _add_raw(admin, path: str, pool: str, *, force: bool = False, **fields) -> int:
    info = nn.CacheDirectiveInfoProto(path=path, pool=pool, **fields)
    req = nn.AddCacheDirectiveRequestProto(info=info, cacheFlags=1 if force else 0)
    return admin.raw_call("addCacheDirective", req, nn.AddCacheDirectiveResponseProto).id


# -- pools ------------------------------------------------------------------------------
def test_pool_create_list_duplicate_remove(dfs, admin, as_user) -> None:
    admin.add_cache_pool("pl-b", mode=0o750, limit=1000, max_relative_expiry_ms=60_000)
    admin.add_cache_pool("pl-a")
    names = admin.list_cache_pools()
    assert names == sorted(names) and {"pl-a", "pl-b"} <= set(names)
    pools = _pools(admin)
    a, b = pools["pl-a"].info, pools["pl-b"].info
    # HDFS defaults: the caller's user and primary group, 0755, no limit, no max TTL
    assert (a.ownerName, a.groupName, a.mode, a.limit, a.maxRelativeExpiry,
            a.defaultReplication) == (dfs.superuser, "supergroup", 0o755, UNLIMITED, NEVER, 1)
    assert (b.mode, b.limit, b.maxRelativeExpiry) == (0o750, 1000, 60_000)
    with pytest.raises(errors.InvalidRequest, match="Cache pool pl-a already exists"):
        admin.add_cache_pool("pl-a")
    alice = as_user("alice")
    with pytest.raises(errors.PermissionDenied):
        alice.add_cache_pool("pl-alice")
    with pytest.raises(errors.PermissionDenied):
        alice.remove_cache_pool("pl-a")
    # a pool alice may not READ lists by name only, with zero statistics
    seen = _pools(alice)
    assert not seen["pl-b"].info.HasField("ownerName")
    assert seen["pl-a"].info.ownerName == dfs.superuser
    admin.remove_cache_pool("pl-a")
    assert "pl-a" not in admin.list_cache_pools()
    with pytest.raises(errors.InvalidRequest, match="non-existent cache pool pl-a"):
        admin.remove_cache_pool("pl-a")


def test_modify_cache_pool(dfs, admin, as_user) -> None:
    admin.add_cache_pool("pl-mod")
    info = nn.CachePoolInfoProto(poolName="pl-mod", ownerName="alice", mode=0o700)
    req = nn.AddCachePoolRequestProto(info=info)  # same wire format as ModifyCachePool's
    with pytest.raises(errors.PermissionDenied):
        as_user("alice").raw_call("modifyCachePool", req, nn.AddCachePoolResponseProto)
    admin.raw_call("modifyCachePool", req, nn.AddCachePoolResponseProto)
    got = _pools(admin)["pl-mod"].info
    assert (got.ownerName, got.groupName, got.mode) == ("alice", "supergroup", 0o700)
    as_user("alice").add_cache_directive("/pl-mod/x", "pl-mod", ttl_s=60)  # owner: rwx
    with pytest.raises(errors.PermissionDenied):
        as_user("bob").add_cache_directive("/pl-mod/x", "pl-mod", ttl_s=60)
    missing = nn.AddCachePoolRequestProto(info=nn.CachePoolInfoProto(poolName="pl-none"))
    with pytest.raises(errors.InvalidRequest, match="does not exist"):
        admin.raw_call("modifyCachePool", missing, nn.AddCachePoolResponseProto)


def test_pool_listing_pages_of_100(admin) -> None:
    for i in range(105):
        admin.add_cache_pool(f"pg-{i:03d}")
    resp = admin.raw_call("listCachePools", nn.ListCachePoolsRequestProto(prevPoolName="pg-"),
                          nn.ListCachePoolsResponseProto)
    names = [e.info.poolName for e in resp.entries]
    assert len(names) == 100 and resp.hasMore
    assert names == [f"pg-{i:03d}" for i in range(100)]
    listed = admin.list_cache_pools()
    assert [n for n in listed if n.startswith("pg-")] == [f"pg-{i:03d}" for i in range(105)]


# -- directives -------------------------------------------------------------------------
def test_directive_add_list_renew_remove(dfs, fs, admin) -> None:
    _write(dfs, fs, "/cd/f", os.urandom(3000))
    admin.add_cache_pool("dir-pool")
    before = int(time.time() * 1000)
    first = admin.add_cache_directive("/cd/f", "dir-pool", ttl_s=600)
    d = _directive(admin, first)
    assert (d.path, d.pool, d.replication) == ("/cd/f", "dir-pool", 1)  # pool's default
    assert before + 600_000 <= d.expiry_ms <= int(time.time() * 1000) + 600_000
    assert (d.bytes_needed, d.bytes_cached, d.files_needed, d.files_cached, d.expired) == \
        (3000, 3000, 1, 1, False)
    admin.renew_cache_directive(first, ttl_s=1200)
    assert _directive(admin, first).expiry_ms >= d.expiry_ms + 590_000
    # the path is normalised as Hadoop's Path does; the same path twice is two directives
    second = admin.add_cache_directive("/cd//f/", "dir-pool", ttl_s=600, replication=2)
    assert second > first
    assert _directive(admin, second).path == "/cd/f"
    assert {x.id for x in admin.list_cache_directives(path="/cd/f")} == {first, second}
    admin.remove_cache_directive(first)
    assert [x.id for x in admin.list_cache_directives(pool="dir-pool")] == [second]
    with pytest.raises(errors.InvalidRequest, match=f"No directive with ID {first} found"):
        admin.remove_cache_directive(first)
    with pytest.raises(errors.InvalidRequest, match=f"No directive with ID {first} found"):
        admin.renew_cache_directive(first, ttl_s=10)
    third = admin.add_cache_directive("/cd/f", "dir-pool", ttl_s=600)
    assert third > second  # ids are never reused


def test_directive_refusals(admin) -> None:
    admin.add_cache_pool("ref-pool", max_relative_expiry_ms=60_000)
    with pytest.raises(errors.InvalidRequest, match="Unknown pool no-such-pool"):
        admin.add_cache_directive("/x", "no-such-pool", ttl_s=60)
    with pytest.raises(errors.InvalidRequest, match="Invalid path 'rel/x'"):
        admin.add_cache_directive("rel/x", "ref-pool", ttl_s=60)
    with pytest.raises(errors.InvalidRequest, match="exceeds the max relative expiration"):
        admin.add_cache_directive("/x", "ref-pool", ttl_s=120)
    with pytest.raises(errors.InvalidRequest, match="Invalid replication factor 0"):
        _add_raw(admin, "/x", "ref-pool", replication=0)
    # without an expiration a directive gets the pool's longest (HDFS validateExpiryTime)
    before = int(time.time() * 1000)
    no_ttl = _add_raw(admin, "/x", "ref-pool")
    assert before + 60_000 <= _directive(admin, no_ttl).expiry_ms <= \
        int(time.time() * 1000) + 60_000
    ok = admin.add_cache_directive("/x", "ref-pool", ttl_s=30)
    with pytest.raises(errors.InvalidRequest, match="exceeds the max relative expiration"):
        admin.renew_cache_directive(ok, ttl_s=90)
    # an absolute expiration is kept as given
    when = int(time.time() * 1000) + 20_000
    info = nn.CacheDirectiveInfoProto(id=ok)
    info.expiration.millis = when
    info.expiration.isRelative = False
    admin.raw_call("modifyCacheDirective", nn.ModifyCacheDirectiveRequestProto(info=info),
                   nn.ModifyCacheDirectiveResponseProto)
    assert _directive(admin, ok).expiry_ms == when


def test_directive_permissions(dfs, admin, as_user) -> None:
    alice, bob, carol = as_user("alice"), as_user("bob"), as_user("carol")
    admin.add_cache_pool("perm-closed")                     # 0755, owner the superuser
    admin.add_cache_pool("perm-open", mode=0o777)
    staff = nn.CachePoolInfoProto(poolName="perm-staff", groupName="staff", mode=0o770)
    admin.raw_call("addCachePool", nn.AddCachePoolRequestProto(info=staff),
                   nn.AddCachePoolResponseProto)
    with pytest.raises(errors.PermissionDenied, match="does not have WRITE permissions"):
        alice.add_cache_directive("/p/x", "perm-closed", ttl_s=60)
    closed = admin.add_cache_directive("/p/x", "perm-closed", ttl_s=60)
    with pytest.raises(errors.PermissionDenied):
        alice.renew_cache_directive(closed, ttl_s=60)
    with pytest.raises(errors.PermissionDenied):
        alice.remove_cache_directive(closed)
    opened = alice.add_cache_directive("/p/x", "perm-open", ttl_s=60)
    bob.remove_cache_directive(opened)                       # 0777: anyone may write
    ours = alice.add_cache_directive("/p/y", "perm-staff", ttl_s=60)  # via the group
    with pytest.raises(errors.PermissionDenied):
        carol.add_cache_directive("/p/y", "perm-staff", ttl_s=60)
    # listing skips the directives of pools the caller may not READ
    assert ours in {d.id for d in bob.list_cache_directives()}
    assert ours not in {d.id for d in carol.list_cache_directives()}
    assert closed in {d.id for d in carol.list_cache_directives()}  # 0755: others read


def test_remove_pool_removes_its_directives(admin) -> None:
    admin.add_cache_pool("gone-pool")
    d = admin.add_cache_directive("/gone", "gone-pool", ttl_s=60)
    admin.remove_cache_pool("gone-pool")
    assert d not in {x.id for x in admin.list_cache_directives()}
    with pytest.raises(errors.InvalidRequest):
        admin.renew_cache_directive(d, ttl_s=60)


def test_directive_paging_over_100(admin) -> None:
    admin.add_cache_pool("many")
    ids = [admin.add_cache_directive(f"/many/p{i}", "many", ttl_s=600) for i in range(130)]
    assert [d.id for d in admin.list_cache_directives(pool="many")] == ids
    flt = nn.CacheDirectiveInfoProto(pool="many")
    page = admin.raw_call("listCacheDirectives",
                          nn.ListCacheDirectivesRequestProto(prevId=0, filter=flt),
                          nn.ListCacheDirectivesResponseProto)
    assert [e.info.id for e in page.elements] == ids[:100] and page.hasMore
    assert all(not e.info.expiration.isRelative for e in page.elements)
    rest = admin.raw_call("listCacheDirectives",
                          nn.ListCacheDirectivesRequestProto(prevId=ids[99], filter=flt),
                          nn.ListCacheDirectivesResponseProto)
    assert [e.info.id for e in rest.elements] == ids[100:] and not rest.hasMore
    one = admin.raw_call("listCacheDirectives", nn.ListCacheDirectivesRequestProto(
        prevId=0, filter=nn.CacheDirectiveInfoProto(id=ids[7])),
        nn.ListCacheDirectivesResponseProto)
    assert [e.info.id for e in one.elements] == [ids[7]]
    with pytest.raises(errors.InvalidRequest, match="Did not find requested id"):
        admin.raw_call("listCacheDirectives", nn.ListCacheDirectivesRequestProto(
            prevId=0, filter=nn.CacheDirectiveInfoProto(id=ids[-1] + 1000)),
            nn.ListCacheDirectivesResponseProto)
    assert [d.id for d in admin.list_cache_directives(path="/many/p42")] == [ids[42]]


# -- what gets cached -------------------------------------------------------------------
def test_directory_directive_is_not_recursive(dfs, fs, admin) -> None:
    _write(dfs, fs, "/nr/a", os.urandom(1000))
    _write(dfs, fs, "/nr/b", os.urandom(2000))
    _write(dfs, fs, "/nr/sub/c", os.urandom(4000))
    admin.add_cache_pool("nr-pool")
    d2 = admin.add_cache_directive("/nr", "nr-pool", ttl_s=600, replication=2)
    got = _directive(admin, d2)
    assert (got.files_needed, got.bytes_needed, got.bytes_cached, got.files_cached) == \
        (2, 3000 * 2, 3000 * 2, 2)
    assert _is_cached(admin, "/nr/sub/c") == [[False, False]]
    assert _is_cached(admin, "/nr/a") == [[True, True]]
    # replication 3 on 2 DataNodes: needed counts 3 copies, only 2 can be cached
    d3 = admin.add_cache_directive("/nr/b", "nr-pool", ttl_s=600, replication=3)
    got = _directive(admin, d3)
    assert (got.bytes_needed, got.bytes_cached, got.files_needed, got.files_cached) == \
        (6000, 4000, 1, 0)
    pool = _pools(admin)["nr-pool"].stats
    assert (pool.bytesNeeded, pool.bytesCached, pool.filesNeeded, pool.filesCached,
            pool.bytesOverlimit) == (12000, 10000, 3, 2, 0)


def test_missing_path_covers_nothing_until_it_exists(dfs, fs, admin) -> None:
    admin.add_cache_pool("later-pool")
    d = admin.add_cache_directive("/later/f", "later-pool", ttl_s=600)
    got = _directive(admin, d)
    assert (got.files_needed, got.bytes_needed, got.bytes_cached) == (0, 0, 0)
    _write(dfs, fs, "/later/f", os.urandom(BS + 10))
    got = _directive(admin, d)
    assert (got.files_needed, got.bytes_needed, got.bytes_cached, got.files_cached) == \
        (1, BS + 10, BS + 10, 1)


def test_pool_limit_caches_only_what_fits(dfs, fs, admin) -> None:
    for name in ("f1", "f2", "f3"):
        _write(dfs, fs, f"/lim/{name}", os.urandom(2000))
    admin.add_cache_pool("lim-pool", limit=5000)
    # HDFS refuses a directive that would not fit (CacheManager.checkLimit) ...
    with pytest.raises(errors.InvalidRequest, match="would exceed pool lim-pool"):
        admin.add_cache_directive("/lim", "lim-pool", ttl_s=600)
    # ... unless forced; then files past the limit stay uncached, in name order
    d = _add_raw(admin, "/lim", "lim-pool", force=True, replication=1)
    got = _directive(admin, d)
    assert (got.bytes_needed, got.bytes_cached, got.files_needed, got.files_cached) == \
        (6000, 4000, 3, 2)
    assert _pools(admin)["lim-pool"].stats.bytesOverlimit == 1000
    assert any(_is_cached(admin, "/lim/f1")[0])
    assert not any(_is_cached(admin, "/lim/f3")[0])


def test_expired_directive_caches_nothing(dfs, fs, admin) -> None:
    _write(dfs, fs, "/exp/f", os.urandom(BS + 1))
    admin.add_cache_pool("exp-pool")
    d = admin.add_cache_directive("/exp/f", "exp-pool", ttl_s=1)
    live = _directive(admin, d)
    assert (live.expired, live.bytes_cached) == (False, BS + 1)
    assert [sum(b) for b in _is_cached(admin, "/exp/f")] == [1, 1]
    time.sleep(1.2)
    dead = _directive(admin, d)
    assert dead.expired
    assert (dead.bytes_needed, dead.bytes_cached, dead.files_needed) == (0, 0, 0)
    assert _is_cached(admin, "/exp/f") == [[False, False], [False, False]]


def test_is_cached_in_located_blocks(dfs, fs, admin) -> None:
    _write(dfs, fs, "/bl/covered", os.urandom(3 * BS))
    _write(dfs, fs, "/bl/other", os.urandom(BS))
    before = _locations(admin, "/bl/covered").locations

    def order(blocks):
        return [[loc.id.datanodeUuid for loc in b.locs] for b in blocks]

    admin.add_cache_pool("bl-pool")
    admin.add_cache_directive("/bl/covered", "bl-pool", ttl_s=600, replication=1)
    located = _locations(admin, "/bl/covered").locations
    assert [sum(b.isCached) for b in located.blocks] == [1, 1, 1]
    assert order(located.blocks) == order(before.blocks)  # HDFS does not reorder for it
    # the first live replica holds the cached copy (isCached is parallel to locs)
    for b in located.blocks:
        first = dfs.ns.bm.live_locations(b.b.blockId)[0].uuid
        assert [loc.id.datanodeUuid == first for loc in b.locs] == list(b.isCached)
    assert not any(located.lastBlock.isCached)  # setCachedLocations skips lastBlock
    assert _is_cached(admin, "/bl/other") == [[False, False]]
    admin.add_cache_directive("/bl/covered", "bl-pool", ttl_s=600, replication=2)
    assert _is_cached(admin, "/bl/covered") == [[True, True]] * 3
    listing = admin.raw_call("getListing", nn.GetListingRequestProto(
        src="/bl", startAfter=b"", needLocation=True), nn.GetListingResponseProto)
    by_name = {st.path: st for st in listing.dirList.partialListing}
    assert [list(b.isCached) for b in by_name[b"covered"].locations.blocks] == \
        [[True, True]] * 3
    assert [list(b.isCached) for b in by_name[b"other"].locations.blocks] == [[False, False]]
    admin.remove_cache_pool("bl-pool")
    assert _is_cached(admin, "/bl/covered") == [[False, False]] * 3


# -- persistence ------------------------------------------------------------------------
def _state(admin) -> tuple[list[tuple], dict[str, tuple]]:
    directives = sorted((d.id, d.path, d.pool, d.replication, d.expiry_ms)
                        for d in admin.list_cache_directives())
    pools = {n: (e.info.ownerName, e.info.groupName, e.info.mode, e.info.limit,
                 e.info.maxRelativeExpiry) for n, e in _pools(admin).items()}
    return directives, pools


def test_pools_and_directives_survive_restart(minidfs_factory, tmp_path) -> None:
    data_dir = tmp_path / "dfs"
    dfs = minidfs_factory(block_size=BS, data_dir=data_dir)
    with AdminRpcClient(dfs.uri, user=dfs.superuser) as admin:
        admin.add_cache_pool("keep", mode=0o711, limit=10**9, max_relative_expiry_ms=10**8)
        admin.add_cache_pool("drop")
        kept = admin.add_cache_directive("/k/a", "keep", ttl_s=3600, replication=2)
        dropped = admin.add_cache_directive("/k/b", "keep", ttl_s=3600)
        admin.add_cache_directive("/k/c", "drop", ttl_s=3600)
        admin.renew_cache_directive(kept, ttl_s=7200)
        admin.remove_cache_directive(dropped)
        admin.remove_cache_pool("drop")
        before = _state(admin)
        # a crash copy: the edit log holds everything (no shutdown checkpoint)
        shutil.copytree(data_dir, tmp_path / "crash")
    assert [d[0] for d in before[0]] == [kept] and set(before[1]) == {"keep"}
    dfs.stop()  # checkpoints: the image holds everything
    for where in (data_dir, tmp_path / "crash"):
        again = minidfs_factory(block_size=BS, data_dir=where)
        with AdminRpcClient(again.uri, user=again.superuser) as admin:
            assert _state(admin) == before
            new = admin.add_cache_directive("/k/d", "keep", ttl_s=60)
            assert new > max(kept, dropped) + 1  # the id of /k/c is not reused either
        again.stop()
