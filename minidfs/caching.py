"""HDFS Centralized Cache Management: cache pools, path-based cache directives, and
which replicas they keep "in memory", after Hadoop 3.x's NameNode (``CacheManager``,
``CachePool``, ``CacheReplicationMonitor``, ``FSNDNCacheOp``,
``FSPermissionChecker.checkPermission(CachePool, FsAction)``).

Why the rules are copied so closely: clients (``hdfs cacheadmin``, our seam) key on the
exception class and read the statistics, so an answer that differs from HDFS's would
pass here and break on a real cluster.

Why no monitor thread: HDFS's CacheReplicationMonitor rescans every 30 s, sends
cache/uncache commands to DataNodes and learns what they pinned from their cache
reports.  minidfs DataNodes have no memory to pin, so :meth:`CacheManager.scan` computes
the *end state* of such a rescan on demand (when directives are listed and when located
blocks are built), with the monitor's rules:

* a directive on a file covers it; on a directory, the files directly in it (not
  recursively); a path that does not exist covers nothing;
* an expired directive (``expiry <= now``) covers nothing and reports zeros;
* ``bytesNeeded`` = the file's length without a last block under construction, times
  the directive's replication; a pool's directives are scanned in id order (a
  directory's files in name order) and a file whose bytes take the pool's running
  ``bytesNeeded`` over its ``limit`` is not cached (HDFS's ``bytesOverlimit``);
* only COMPLETE blocks are cached, each on as many of its live replicas as the highest
  replication of the directives reaching it (the first ones in pipeline order; HDFS
  picks at random); DataNode cache capacity is taken as unlimited (HDFS would need
  ``dfs.datanode.max.locked.memory``);
* ``bytesCached`` of a directive counts min(cached replicas, its replication) per
  block, and a file counts as cached when all its needed bytes are.

Persistence (as HDFS keeps them in its edit log and fsimage): pools, directives and the
next directive id go through the namesystem's journal (records ``cache_*``) and its
image (key ``cache``), so a restarted minidfs has them all; a directive's expiry is
stored absolute.  Statistics and cached locations are not stored: they are recomputed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from minidfs import errors
from minidfs import permissions as perms
from minidfs.inodes import INodeDirectory, INodeFile, now_ms
from minidfs.permissions import READ, WRITE, Caller

LIMIT_UNLIMITED = 2**63 - 1                 #: CachePoolInfo.LIMIT_UNLIMITED (Long.MAX_VALUE)
MAX_RELATIVE_EXPIRY_MS = (2**63 - 1) // 4   #: Expiration.MAX_RELATIVE_EXPIRY_MS
RELATIVE_EXPIRY_NEVER = MAX_RELATIVE_EXPIRY_MS  #: CachePoolInfo.RELATIVE_EXPIRY_NEVER
DEFAULT_REPLICATION = 1                     #: CachePoolInfo.DEFAULT_REPLICATION_NUM
DEFAULT_MODE = 0o755                        #: FsPermission.getCachePoolDefault()
CACHE_FLAG_FORCE = 0x01                     #: CacheFlag.FORCE: skip the pool limit check
#: dfs.namenode.list.cache.pools.num.responses / ...directives.num.responses defaults
LIST_POOLS_NUM_RESPONSES = 100
LIST_DIRECTIVES_NUM_RESPONSES = 100

_ACTIONS = {READ: "READ", WRITE: "WRITE"}


@dataclass
class CachePool:
    name: str
    owner: str
    group: str
    mode: int
    limit: int
    max_relative_expiry: int
    default_replication: int


@dataclass
class CacheDirective:
    id: int
    path: str
    replication: int
    pool: str
    expiry: int  #: absolute, ms since the epoch (HDFS stores no relative TTL)


@dataclass
class PoolInfo:
    """A CachePoolInfoProto as given: ``None`` = field absent (keep / use the default)."""

    name: str
    owner: str | None = None
    group: str | None = None
    mode: int | None = None
    limit: int | None = None
    max_relative_expiry: int | None = None
    default_replication: int | None = None


@dataclass
class DirectiveInfo:
    """A CacheDirectiveInfoProto as given; ``expiration`` is ``(millis, is_relative)``."""

    id: int | None = None
    path: str | None = None
    replication: int | None = None
    pool: str | None = None
    expiration: tuple[int, bool] | None = None


@dataclass
class DirectiveStats:
    bytes_needed: int = 0
    bytes_cached: int = 0
    files_needed: int = 0
    files_cached: int = 0
    has_expired: bool = False


@dataclass
class PoolStats:
    bytes_needed: int = 0
    bytes_cached: int = 0
    files_needed: int = 0
    files_cached: int = 0
    bytes_overlimit: int = 0


@dataclass
class CacheScan:
    """The outcome of one simulated rescan."""

    directives: dict[int, DirectiveStats] = field(default_factory=dict)
    pools: dict[str, PoolStats] = field(default_factory=dict)
    #: block id -> number of its replicas cached (the first live ones)
    cached: dict[int, int] = field(default_factory=dict)


def _invalid(message: str) -> errors.InvalidRequest:
    return errors.InvalidRequest(message)


def _duration(ms: int) -> str:
    """DFSUtilClient.durationToString, for the messages that quote an expiration."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    sec = ms // 1000
    days, sec = divmod(sec, 86400)
    hours, sec = divmod(sec, 3600)
    minutes, sec = divmod(sec, 60)
    return f"{sign}{days:03d}:{hours:02d}:{minutes:02d}:{sec:02d}.{ms % 1000:03d}"


def _expiration_text(millis: int, relative: bool) -> str:
    """CacheDirectiveInfo.Expiration.toString: a duration, or an ISO-8601 date."""
    if relative:
        return _duration(millis)
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(millis / 1000))
    except (OverflowError, OSError, ValueError):
        return str(millis)


def normalize_path(raw: str) -> str:
    """What HDFS makes of a directive's path: ``new Path(s).toUri().getPath()`` (scheme and
    authority dropped, repeated and trailing slashes removed, ``.``/``..`` resolved as
    URI.normalize does) checked with DFSUtil.isValidName."""
    if raw == "":
        raise errors.RemoteError("Can not create a Path from an empty string",
                                 java_class="java.lang.IllegalArgumentException")
    path = raw
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:(//[^/]*)?", path)
    if m and (path.find("/") == -1 or path.find(":") < path.find("/")):
        path = path[m.end():] or "/"
    path = re.sub("/+", "/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    if path.startswith("/"):
        out: list[str] = []
        for seg in path.split("/")[1:]:
            if seg == ".":
                continue
            if seg == ".." and out and out[-1] != "..":
                out.pop()
                continue
            out.append(seg)
        path = "/" + "/".join(out)
    if not path.startswith("/") or any(
            seg in (".", "..") or ":" in seg for seg in path.split("/")[1:]):
        raise _invalid(f"Invalid path '{path}'.")
    return path


class CacheManager:
    """Pools and directives of one namesystem; every method runs under its lock.

    The checked methods validate as HDFS does and journal a record through the
    namesystem (``ns._log``); the ``_ap_cache_*`` appliers apply records, live and on
    replay, without checking.
    """

    def __init__(self, ns: Any):
        self.ns = ns
        self.pools: dict[str, CachePool] = {}
        #: by id; ids only grow and a modify replaces in place, so this is id order
        self.directives: dict[int, CacheDirective] = {}
        self.next_id = 1
        self.list_pools_limit = LIST_POOLS_NUM_RESPONSES
        self.list_directives_limit = LIST_DIRECTIVES_NUM_RESPONSES

    # -- persistence -------------------------------------------------------------------
    def appliers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_ap_")}

    def to_json(self) -> dict[str, Any]:
        return {"next_id": self.next_id, "pools": [asdict(p) for p in self.pools.values()],
                "directives": [asdict(d) for d in self.directives.values()]}

    def load_json(self, data: dict[str, Any] | None) -> None:
        self.pools.clear()
        self.directives.clear()
        self.next_id = 1
        if not data:
            return
        self.next_id = int(data["next_id"])
        for p in data["pools"]:
            self.pools[p["name"]] = CachePool(**p)
        for d in sorted(data["directives"], key=lambda x: x["id"]):
            self.directives[d["id"]] = CacheDirective(**d)

    # -- helpers -----------------------------------------------------------------------
    def _primary_group(self, caller: Caller) -> str:
        """UGI.getPrimaryGroupName as minidfs knows groups: the first configured group,
        the supergroup for the superuser, else the user's own name (the implicit
        per-user group :meth:`Namesystem.caller` adds)."""
        cfg = self.ns.config
        configured = cfg.groups.get(caller.user)
        if configured:
            return str(configured[0])
        if caller.user == cfg.superuser:
            return str(cfg.supergroup)
        return caller.user

    @staticmethod
    def _check_pool(caller: Caller, pool: CachePool, access: int) -> None:
        """FSPermissionChecker.checkPermission(CachePool, FsAction): owner, group and
        other bits are each enough on their own (not POSIX's first-match)."""
        if caller.is_superuser:
            return
        mode = pool.mode
        if caller.user == pool.owner and (mode >> 6) & access == access:
            return
        if pool.group in caller.groups and (mode >> 3) & access == access:
            return
        if mode & access == access:
            return
        raise errors.AccessControl(
            f"Permission denied while accessing pool {pool.name}: user {caller.user} "
            f"does not have {_ACTIONS[access]} permissions.")

    @staticmethod
    def _readable(caller: Caller, pool: CachePool) -> bool:
        try:
            CacheManager._check_pool(caller, pool, READ)
        except errors.AccessControl:
            return False
        return True

    @staticmethod
    def _superuser(caller: Caller, op: str) -> None:
        """FSNamesystem's checkSuperuserPrivilege before any pool change."""
        perms.check_superuser(caller, op)

    @staticmethod
    def _validate_pool_info(info: PoolInfo) -> None:
        """CachePoolInfo.validate."""
        if info.limit is not None and info.limit < 0:
            raise _invalid("Limit is negative.")
        if info.default_replication is not None and info.default_replication < 0:
            raise _invalid("Default Replication is negative")
        if info.default_replication is not None and info.default_replication > 32767:
            raise errors.RemoteError(f"Out of range: {info.default_replication}",
                                     java_class="java.lang.IllegalArgumentException")
        if info.max_relative_expiry is not None:
            if info.max_relative_expiry < 0:
                raise _invalid("Max relative expiry is negative.")
            if info.max_relative_expiry > MAX_RELATIVE_EXPIRY_MS:
                raise _invalid("Max relative expiry is too big.")
        CacheManager._validate_pool_name(info.name)

    @staticmethod
    def _validate_pool_name(name: str | None) -> None:
        if not name:
            raise errors.RemoteError("invalid empty cache pool name")  # an IOException

    def _pool(self, name: str | None) -> CachePool:
        """CacheManager.validatePoolName + getCachePool."""
        if name is None:
            raise _invalid("No pool specified.")
        if name == "":
            raise _invalid("Invalid empty pool name.")
        pool = self.pools.get(name)
        if pool is None:
            raise _invalid(f"Unknown pool {name}")
        return pool

    def _by_id(self, directive_id: int) -> CacheDirective:
        if directive_id <= 0:
            raise _invalid("Invalid negative ID.")
        d = self.directives.get(directive_id)
        if d is None:
            raise _invalid(f"No directive with ID {directive_id} found.")
        return d

    @staticmethod
    def _validate_path(path: str | None) -> str:
        if path is None:
            raise _invalid("No path specified.")
        return normalize_path(path)

    @staticmethod
    def _validate_replication(repl: int) -> int:
        if repl > 32767:
            raise errors.RemoteError(f"Out of range: {repl}",
                                     java_class="java.lang.IllegalArgumentException")
        if repl <= 0:
            raise _invalid(f"Invalid replication factor {repl} <= 0")
        return repl

    @staticmethod
    def _validate_expiry(expiration: tuple[int, bool] | None, max_relative: int,
                         now: int) -> int:
        """CacheManager.validateExpiryTime: the absolute expiry; absent means the pool's
        longest (``RELATIVE_EXPIRY_NEVER`` by default)."""
        if expiration is None:
            return now + max_relative
        millis, relative = expiration
        if millis < 0:
            raise _invalid(f"Cannot set a negative expiration: {millis}")
        if relative:
            rel, absolute = millis, now + millis
        else:
            rel, absolute = millis - now, millis
        text = _expiration_text(millis, relative)
        if rel > MAX_RELATIVE_EXPIRY_MS:
            raise _invalid(f"Expiration {text} is too far in the future!")
        if rel > max_relative:
            raise _invalid(f"Expiration {text} exceeds the max relative expiration time of "
                           f"{max_relative} ms.")
        return absolute

    def _check_limit(self, pool: CachePool, path: str, repl: int) -> None:
        """CacheManager.checkLimit: refuse a directive whose bytes (``computeNeeded``:
        whole file lengths) would take the pool past its limit."""
        if pool.limit == LIMIT_UNLIMITED:
            return
        needed = sum(self.ns.file_length(f) for f in self._covered(path)) * repl
        have = self.scan().pools[pool.name].bytes_needed
        if have + needed > pool.limit:
            raise _invalid(
                f"Caching path {path} of size {needed // repl} bytes at replication {repl} "
                f"would exceed pool {pool.name}'s remaining capacity of "
                f"{pool.limit - have} bytes.")

    def _covered(self, path: str) -> list[INodeFile]:
        """The files a directive on ``path`` covers (CacheReplicationMonitor
        .rescanCacheDirectives): the file itself, or a directory's direct children."""
        try:
            res = self.ns._resolve(path)
        except errors.RemoteError:
            return []
        if not res.complete or res.blocked or res.dotsnapshot is not None:
            return []
        node = res.last
        if isinstance(node, INodeFile):
            return [node]
        if isinstance(node, INodeDirectory):
            files = []
            for name in node.sorted_names():
                child = node.children[name.decode("utf-8")]
                if isinstance(child, INodeFile):
                    files.append(child)
            return files
        return []

    # -- pools -------------------------------------------------------------------------
    def add_pool(self, caller: Caller, info: PoolInfo) -> None:
        with self.ns.lock:
            self._superuser(caller, f"addCachePool {info.name}")
            self._validate_pool_info(info)
            if info.name in self.pools:
                raise _invalid(f"Cache pool {info.name} already exists.")
            pool = CachePool(
                name=info.name,
                owner=info.owner if info.owner is not None else caller.user,
                group=info.group if info.group is not None else self._primary_group(caller),
                mode=(info.mode & 0o1777) if info.mode is not None else DEFAULT_MODE,
                limit=info.limit if info.limit is not None else LIMIT_UNLIMITED,
                max_relative_expiry=info.max_relative_expiry
                if info.max_relative_expiry is not None else RELATIVE_EXPIRY_NEVER,
                default_replication=info.default_replication
                if info.default_replication is not None else DEFAULT_REPLICATION)
            self.ns._log({"op": "cache_add_pool", **asdict(pool)})

    def _ap_cache_add_pool(self, r: dict[str, Any]) -> None:
        fields = {k: v for k, v in r.items() if k not in ("op", "txid")}
        self.pools[fields["name"]] = CachePool(**fields)

    def modify_pool(self, caller: Caller, info: PoolInfo) -> None:
        with self.ns.lock:
            self._superuser(caller, f"modifyCachePool {info.name}")
            self._validate_pool_info(info)
            pool = self.pools.get(info.name)
            if pool is None:
                raise _invalid(f"Cache pool {info.name} does not exist.")
            new = CachePool(**asdict(pool))
            if info.owner is not None:
                new.owner = info.owner
            if info.group is not None:
                new.group = info.group
            if info.mode is not None:
                new.mode = info.mode & 0o1777
            if info.limit is not None:
                new.limit = info.limit
            if info.default_replication is not None:
                new.default_replication = info.default_replication
            if info.max_relative_expiry is not None:
                new.max_relative_expiry = info.max_relative_expiry
            self.ns._log({"op": "cache_modify_pool", **asdict(new)})

    def _ap_cache_modify_pool(self, r: dict[str, Any]) -> None:
        self._ap_cache_add_pool(r)

    def remove_pool(self, caller: Caller, name: str) -> None:
        with self.ns.lock:
            self._superuser(caller, f"removeCachePool {name}")
            self._validate_pool_name(name)
            if name not in self.pools:
                raise _invalid(f"Cannot remove non-existent cache pool {name}")
            self.ns._log({"op": "cache_remove_pool", "name": name})

    def _ap_cache_remove_pool(self, r: dict[str, Any]) -> None:
        name = r["name"]
        self.pools.pop(name, None)
        for d in [d for d in self.directives.values() if d.pool == name]:
            del self.directives[d.id]

    def list_pools(self, caller: Caller, prev: str,
                   ) -> tuple[list[tuple[CachePool, bool, PoolStats]], bool]:
        """One page after ``prev``: (pool, caller may READ it, stats); has-more flag.
        Unreadable pools list by name only, with zero stats (CachePool.getEntry)."""
        with self.ns.lock:
            names = sorted(n for n in self.pools if n > prev)
            scan = self.scan() if names else CacheScan()
            out: list[tuple[CachePool, bool, PoolStats]] = []
            for i, name in enumerate(names):
                if i >= self.list_pools_limit:
                    return out, True
                pool = self.pools[name]
                full = self._readable(caller, pool)
                out.append((pool, full, scan.pools[name] if full else PoolStats()))
            return out, False

    # -- directives --------------------------------------------------------------------
    def add_directive(self, caller: Caller, info: DirectiveInfo, flags: int = 0,
                      ) -> CacheDirective:
        with self.ns.lock:
            if info.id is not None:
                raise errors.RemoteError(
                    "addDirective: you cannot specify an ID for this operation.")
            pool = self._pool(info.pool)
            self._check_pool(caller, pool, WRITE)
            path = self._validate_path(info.path)
            repl = self._validate_replication(
                info.replication if info.replication is not None
                else pool.default_replication)
            expiry = self._validate_expiry(info.expiration, pool.max_relative_expiry,
                                           now_ms())
            if not flags & CACHE_FLAG_FORCE:
                self._check_limit(pool, path, repl)
            d = CacheDirective(self.next_id, path, repl, pool.name, expiry)
            self.ns._log({"op": "cache_add_directive", **asdict(d)})
            return self.directives[d.id]

    def _ap_cache_add_directive(self, r: dict[str, Any]) -> None:
        d = CacheDirective(r["id"], r["path"], r["replication"], r["pool"], r["expiry"])
        self.directives[d.id] = d
        self.next_id = max(self.next_id, d.id + 1)

    def modify_directive(self, caller: Caller, info: DirectiveInfo, flags: int = 0) -> None:
        """CacheManager.modifyDirective: unset fields keep their values; a new pool needs
        WRITE (and room, unless FORCE); the expiry is checked against the target pool."""
        with self.ns.lock:
            if info.id is None:
                raise _invalid("Must supply an ID.")
            prev = self._by_id(info.id)
            src = self.pools[prev.pool]
            self._check_pool(caller, src, WRITE)
            path = self._validate_path(info.path if info.path is not None else prev.path)
            repl = self._validate_replication(
                info.replication if info.replication is not None else prev.replication)
            dest = self._pool(info.pool if info.pool is not None else prev.pool)
            if dest.name != src.name:
                self._check_pool(caller, dest, WRITE)
                if not flags & CACHE_FLAG_FORCE:
                    self._check_limit(dest, path, repl)
            expiration = info.expiration if info.expiration is not None \
                else (prev.expiry, False)
            expiry = self._validate_expiry(expiration, dest.max_relative_expiry, now_ms())
            d = CacheDirective(prev.id, path, repl, dest.name, expiry)
            self.ns._log({"op": "cache_modify_directive", **asdict(d)})

    def _ap_cache_modify_directive(self, r: dict[str, Any]) -> None:
        self._ap_cache_add_directive(r)

    def remove_directive(self, caller: Caller, directive_id: int) -> None:
        with self.ns.lock:
            d = self._by_id(directive_id)
            self._check_pool(caller, self.pools[d.pool], WRITE)
            self.ns._log({"op": "cache_remove_directive", "id": d.id})

    def _ap_cache_remove_directive(self, r: dict[str, Any]) -> None:
        self.directives.pop(r["id"], None)

    def list_directives(self, caller: Caller, prev_id: int, flt: DirectiveInfo,
                        ) -> tuple[list[tuple[CacheDirective, DirectiveStats]], bool]:
        """CacheManager.listCacheDirectives: ids above ``prev_id`` matching the filter, in
        id order, one page; directives of pools the caller may not READ are skipped.
        Like HDFS, has-more is set as soon as a page is full and any directive follows."""
        with self.ns.lock:
            filter_path = self._validate_path(flt.path) if flt.path is not None else None
            if flt.replication is not None:
                raise _invalid("Filtering by replication is unsupported.")
            if flt.id is not None:
                if flt.id not in self.directives:
                    raise _invalid(f"Did not find requested id {flt.id}")
                prev_id = flt.id - 1
            candidates = [d for i, d in self.directives.items() if i > prev_id]
            scan = self.scan() if candidates else CacheScan()
            out: list[tuple[CacheDirective, DirectiveStats]] = []
            for d in candidates:
                if len(out) >= self.list_directives_limit:
                    return out, True
                if flt.id is not None and d.id != flt.id:
                    break
                if flt.pool is not None and d.pool != flt.pool:
                    continue
                if filter_path is not None and d.path != filter_path:
                    continue
                if self._readable(caller, self.pools[d.pool]):
                    out.append((d, scan.directives[d.id]))
            return out, False

    # -- the simulated CacheReplicationMonitor ---------------------------------------
    def scan(self, now: int | None = None) -> CacheScan:
        """What a CacheReplicationMonitor rescan would settle on once the DataNodes had
        cached everything asked of them (see the module docstring).  Caller holds the
        lock; costs one pass over the directives' files."""
        now = now_ms() if now is None else now
        out = CacheScan()
        for name in self.pools:
            out.pools[name] = PoolStats()
        required: dict[int, int] = {}
        #: (stats, pool stats, bytes needed, complete blocks [(id, bytes)], replication)
        reached: list[tuple[DirectiveStats, PoolStats, int, list[tuple[int, int]], int]] = []
        for d in self.directives.values():
            st = out.directives[d.id] = DirectiveStats(has_expired=now > d.expiry)
            ps = out.pools[d.pool]
            pool = self.pools[d.pool]
            if 0 < d.expiry <= now:
                continue
            for f in self._covered(d.path):
                st.files_needed += 1
                ps.files_needed += 1
                blocks = f.blocks
                if blocks and not blocks[-1].complete and not f.frozen:
                    blocks = blocks[:-1]  # computeFileSizeNotIncludingLastUcBlock
                needed = sum(b.num_bytes for b in blocks) * d.replication
                st.bytes_needed += needed
                ps.bytes_needed += needed
                if ps.bytes_needed > pool.limit:
                    continue  # over the pool's limit: this file is not cached
                done = [(b.id, b.num_bytes) for b in blocks if b.complete]
                for block_id, _ in done:
                    if required.get(block_id, 0) < d.replication:
                        required[block_id] = d.replication
                reached.append((st, ps, needed, done, d.replication))
        bm = self.ns.bm
        for block_id, repl in required.items():
            n = min(repl, len(bm.live_locations(block_id)))
            if n:
                out.cached[block_id] = n
        for st, ps, needed, done, repl in reached:
            cached = sum(min(out.cached.get(block_id, 0), repl) * size
                         for block_id, size in done)
            st.bytes_cached += cached
            ps.bytes_cached += cached
            if cached == needed:
                st.files_cached += 1
                ps.files_cached += 1
        for name, ps in out.pools.items():
            ps.bytes_overlimit = max(ps.bytes_needed - self.pools[name].limit, 0)
        return out

    def cached_replicas(self) -> dict[int, set[int]]:
        """Block id -> indexes of the DataNodes holding a cached replica of it, for
        ``LocatedBlockProto.isCached``; empty (and free) while there are no directives.
        Caller holds the lock."""
        if not self.directives:
            return {}
        bm = self.ns.bm
        return {block_id: {d.index for d in bm.live_locations(block_id)[:n]}
                for block_id, n in self.scan().cached.items()}
