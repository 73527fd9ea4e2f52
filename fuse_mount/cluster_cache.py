"""The cluster's own cache for a mounted dataset (``--cache-pool``, the ``cachePool``
volume attribute): HDFS Centralized Cache Management directives, renewed while mounted.

Our disk cache helps the node that reads; HDFS's cache pools help every node:
a cache directive asks the DataNodes to keep a path's blocks in memory, so a
first epoch on any node reads DataNode RAM instead of DataNode disks, and the
NameNode marks those replicas cached in every block location it sends.

Why the mount does this, not the CSI node service: the daemon already holds
the HDFS connection with the volume's credentials (a Kerberos keytab never
has to live anywhere else), and it lives exactly as long as the staged volume.

How:

* HDFS directives are not recursive: one on a directory covers the files
  directly in it. The dataset's tree is walked once (directories in name
  order, at most :data:`MAX_DIRECTIVES`) and each directory holding files gets
  its own directive, in the named pool, with a time to live (``--cache-pool-ttl``).
* Every third of the TTL the directives are renewed. One the NameNode no
  longer knows (removed by an administrator, a NameNode that lost it) is added
  again. If the mount dies without cleaning up, the directives expire on their
  own: a crashed or deleted node never pins memory for longer than one TTL.
* The directive ids are kept in ``state_file`` (the own loop's takeover
  directory), so a daemon that replaces a crashed or upgraded one renews the
  same directives instead of adding new ones. At unmount they are removed.
* Errors (unknown pool, no WRITE permission on it, a NameNode down) are logged
  and counted and never fail the mount: the data is readable either way, only
  slower. A pool that does not exist is said once, with what to do.

Progress: ``hdfs_fuse_cluster_cache_directives`` and the bytes the NameNode
reports cached/needed for them (``hdfs_fuse_cluster_cache_bytes``), refreshed
at each renewal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import threading
from typing import TYPE_CHECKING, Any

from hdfs_client import errors as hdfs_errors
from hdfs_csi_common.units import format_size

if TYPE_CHECKING:
    from hdfs_client.base import HdfsClient

log = logging.getLogger(__name__)

#: most directories of one dataset given a directive (HDFS lists 100 directives per
#: RPC page and rescans all of them every 30 s: thousands per mount would load the
#: NameNode more than a cache can pay back)
MAX_DIRECTIVES = 1024


class ClusterCache:
    def __init__(self, client: HdfsClient, root: str, pool: str, *, ttl_s: float,
                 replication: int | None = None, state_file: str | None = None,
                 metrics: Any = None,
                 max_directives: int = MAX_DIRECTIVES):
        if not ttl_s > 0:
            raise ValueError("the cache directives' time to live must be positive")
        self.client = client
        self.root = root
        self.pool = pool
        self.ttl_s = ttl_s
        self.replication = replication
        self.state_file = state_file
        self.metrics = metrics
        self.max_directives = max_directives
        #: HDFS path -> directive id
        self.directives: dict[str, int] = {}
        #: the directories that should have one (found by the walk, or adopted)
        self.wanted: list[str] = []
        self.errors = 0
        self.pinned = threading.Event()   # set once every directory has its directive
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._told: set[str] = set()

    # -- life cycle ----------------------------------------------------------------
    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="cluster-cache", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, *, remove: bool = True) -> None:
        """End renewals; ``remove`` deletes the directives (unmount), otherwise they
        stay for the daemon that takes over (handover) and expire if none does."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not remove:
            return
        with self._lock:
            ids = dict(self.directives)
            self.directives.clear()
        gone = 0
        for path, did in ids.items():
            try:
                self.client.remove_cache_directive(did)
                gone += 1
            except hdfs_errors.InvalidRequest:
                gone += 1   # already gone (expired and removed, or by an administrator)
            except (hdfs_errors.HdfsError, ValueError) as exc:
                log.warning("cluster cache: could not remove the directive for %s (it expires "
                            "on its own within %.0f s): %s", path, self.ttl_s, exc)
        if self.state_file is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.state_file)
        self._publish(0, 0)
        if ids:
            log.info("cluster cache: removed %d of %d directive(s) in pool %s", gone, len(ids),
                     self.pool)

    def run(self) -> None:
        self._adopt()
        try:
            if not self.directives:
                self._pin()
            else:
                self.pinned.set()
                log.info("cluster cache: renewing %d directive(s) in pool %s of the mount "
                         "before this one", len(self.directives), self.pool)
            while not self._stop.wait(self.ttl_s / 3):
                self.renew()
        except Exception:  # noqa: BLE001 - a cache is an optimisation: never the mount's end
            log.exception("cluster cache: stopped renewing (the directives expire on their own)")

    # -- the work ------------------------------------------------------------------
    def _pin(self) -> None:
        dirs, truncated = self._directories()
        self.wanted = dirs
        for path in dirs:
            if self._stop.is_set():
                return
            with self._lock:
                if path in self.directives:
                    continue
            did = self._add(path)
            if did is None and path in self._told:   # the pool is unusable: no point going on
                return
        if not self.wanted:
            log.info("cluster cache: no files under %s to cache", self.root)
        self._save()
        self.pinned.set()
        with self._lock:
            n = len(self.directives)
        log.info("cluster cache: %d directive(s) in pool %s for %s, time to live %.0f s%s",
                 n, self.pool, self.root, self.ttl_s,
                 f" (the first {self.max_directives} directories only)" if truncated else "")
        self._refresh_stats()

    def _directories(self) -> tuple[list[str], bool]:
        """Directories under the root (itself first) that directly hold files, in name
        order, at most ``max_directives``; True if some were left out."""
        out: list[str] = []
        todo = [self.root]
        while todo and not self._stop.is_set():
            path = todo.pop(0)
            try:
                entries = sorted(self.client.list_dir(path), key=lambda s: s.path)
            except hdfs_errors.NotFound:
                continue
            except hdfs_errors.HdfsError as exc:
                self._error(f"cannot list {path}", exc)
                continue
            if any(not e.is_dir for e in entries):
                if len(out) >= self.max_directives:
                    return out, True
                out.append(path)
            todo.extend(e.path for e in entries if e.is_dir and e.name != ".snapshot")
        return out, False

    def _add(self, path: str) -> int | None:
        try:
            did = self.client.add_cache_directive(path, self.pool, ttl_s=self.ttl_s,
                                                  replication=self.replication)
        except hdfs_errors.InvalidRequest as exc:
            self._refused(path, exc)
            return None
        except hdfs_errors.PermissionDenied as exc:
            self._refused(path, exc)
            return None
        except hdfs_errors.HdfsError as exc:
            self._error(f"cannot add a directive for {path}", exc)
            return None
        with self._lock:
            self.directives[path] = did
        return did

    def renew(self) -> None:
        """Push every directive's expiry one TTL ahead; add those missing (gone from
        the NameNode, or never added because a call failed)."""
        if not self.wanted:
            self._pin()   # the walk failed (NameNode down), or found nothing: again
            return
        with self._lock:
            ids = dict(self.directives)
        for path in self.wanted:
            if self._stop.is_set():
                return
            did = ids.get(path)
            if did is None:
                self._add(path)
                continue
            try:
                self.client.renew_cache_directive(did, ttl_s=self.ttl_s)
            except hdfs_errors.InvalidRequest:
                with self._lock:
                    self.directives.pop(path, None)
                if self._add(path) is not None:
                    log.info("cluster cache: the directive for %s was gone; added again", path)
            except hdfs_errors.HdfsError as exc:
                self._error(f"cannot renew the directive for {path}", exc)
        with self._lock:
            if all(p in self.directives for p in self.wanted):
                self.pinned.set()
        self._save()
        self._refresh_stats()

    def _refresh_stats(self) -> None:
        with self._lock:
            ours = set(self.directives.values())
        if not ours:
            self._publish(0, 0)
            return
        try:
            listed = self.client.list_cache_directives(pool=self.pool)
        except hdfs_errors.HdfsError as exc:
            self._error("cannot list the pool's directives", exc)
            return
        mine = [d for d in listed if d.id in ours]
        cached = sum(d.bytes_cached for d in mine)
        needed = sum(d.bytes_needed for d in mine)
        self._publish(cached, needed)
        log.info("cluster cache: %s of %s cached in DataNode memory (%d directive(s))",
                 format_size(cached), format_size(needed), len(mine))

    # -- state -----------------------------------------------------------------------
    def _adopt(self) -> None:
        """The directives of the daemon this one replaced (same root and pool only)."""
        if self.state_file is None:
            return
        try:
            with open(self.state_file, encoding="utf-8") as f:
                state = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("cluster cache: ignoring unreadable %s: %s", self.state_file, exc)
            return
        if state.get("root") != self.root or state.get("pool") != self.pool:
            return
        with self._lock:
            self.directives = {str(p): int(i) for p, i in state.get("directives", {}).items()}
            self.wanted = sorted(self.directives)

    def _save(self) -> None:
        if self.state_file is None:
            return
        with self._lock:
            state = {"root": self.root, "pool": self.pool, "directives": dict(self.directives)}
        tmp = self.state_file + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(state, f)
            os.replace(tmp, self.state_file)
        except OSError as exc:
            log.warning("cluster cache: cannot save %s: %s", self.state_file, exc)

    # -- reporting -------------------------------------------------------------------
    def _publish(self, cached: int, needed: int) -> None:
        if self.metrics is None:
            return
        with self._lock:
            n = len(self.directives)
        self.metrics.cluster_cache_directives.set(n)
        self.metrics.cluster_cache_bytes.labels(state="cached").set(cached)
        self.metrics.cluster_cache_bytes.labels(state="needed").set(needed)

    def _refused(self, path: str, exc: hdfs_errors.HdfsError) -> None:
        self.errors += 1
        if self.metrics is not None:
            self.metrics.cluster_cache_errors.inc()
        key = type(exc).__name__
        if key in self._told:
            self._told.add(path)
            return
        self._told.update({key, path})
        what = ("the pool does not exist or refuses this directive"
                if isinstance(exc, hdfs_errors.InvalidRequest)
                else "this user may not add directives to the pool (it needs WRITE on it)")
        log.error("cluster cache: pool %r refused a directive for %s: %s (%s). The data is "
                  "read without the cluster's cache; an HDFS administrator creates the pool "
                  "with 'hdfs cacheadmin -addPool %s -mode 0777' or grants access.",
                  self.pool, path, exc, what, self.pool)

    def _error(self, what: str, exc: Exception) -> None:
        self.errors += 1
        if self.metrics is not None:
            self.metrics.cluster_cache_errors.inc()
        log.warning("cluster cache: %s (tried again at the next renewal): %s", what, exc)


def start_for(core: Any, opts: Any, metrics: Any, *,
              takeover_dir: str | None = None) -> ClusterCache | None:
    """The mount's cluster cache, started, if its options name a pool (else None)."""
    if not opts.cache_pool:
        return None
    state = posixpath.join(takeover_dir, STATE_FILE) if takeover_dir else None
    cc = ClusterCache(core.client, core.root, opts.cache_pool, ttl_s=opts.cache_pool_ttl,
                      replication=opts.cache_pool_replication, state_file=state,
                      metrics=metrics)
    cc.start()
    return cc


#: in the own loop's takeover directory: the directive ids a successor renews
STATE_FILE = "cluster-cache.json"

