"""Attribute, directory-listing and negative cache with one TTL.

Why: every ``stat``/``open`` through FUSE starts with a lookup, and a
NameNode round trip per lookup makes ``ls -l`` of a 100k-entry directory take
100k RPCs (the classic fuse-dfs complaint).  A listing therefore also fills
the attribute cache for every child, and "does not exist" answers are cached
too, because tools probe for files that are not there (``.git``, locale
files, Python's ``__pycache__``).

Freshness: an entry is trusted for ``ttl`` seconds after it was fetched, so a
file changed in HDFS by someone else is seen at most ``ttl`` late.  Changes
made through this mount invalidate the affected paths immediately, and an
answer whose RPC started before the latest invalidation is not cached at all
(:meth:`MetadataCache.token`): a listing that was in flight while a file was
created must not bring back a view without it.
``ttl == 0`` disables caching.  The number of entries is bounded (LRU) so a
walk over millions of files cannot grow the process without limit.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from hdfs_client.base import FileStatus

#: returned by :meth:`MetadataCache.get_attr` when nothing is cached
MISSING = object()


class MetadataCache:
    def __init__(self, ttl: float, *, max_entries: int = 200_000, max_listings: int = 1024,
                 clock: Callable[[], float] = time.monotonic):
        # 200k entries ~ 60 MB: the working set of a TTL window, not the whole dataset
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_listings = max_listings
        self._listed = 0  # children held by cached listings (bounded by max_entries)
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every invalidation
        # path -> (FileStatus | None for "does not exist", expiry)
        self._attrs: OrderedDict[str, tuple[FileStatus | None, float]] = OrderedDict()
        # dir path -> (children, names, expiry)
        self._dirs: OrderedDict[str, tuple[list[FileStatus], frozenset[str], float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def token(self) -> int:
        """Take before an RPC; pass to ``put_*`` so a result older than the latest
        invalidation is dropped instead of cached."""
        return self._generation

    # -- attributes -------------------------------------------------------------
    def get_attr(self, path: str) -> FileStatus | None | object:
        """Cached status, ``None`` for a cached "does not exist", or :data:`MISSING`."""
        if not self.enabled:
            return MISSING
        with self._lock:
            hit = self._attrs.get(path)
            if hit is None:
                return MISSING
            if hit[1] <= self._clock():
                del self._attrs[path]
                return MISSING
            return hit[0]

    def put_attr(self, path: str, status: FileStatus | None, token: int | None = None) -> None:
        if not self.enabled:
            return
        with self._lock:
            if token is not None and token != self._generation:
                return
            self._put_attr_locked(path, status, self._clock() + self.ttl)

    def put_negative(self, path: str, token: int | None = None) -> None:
        self.put_attr(path, None, token)

    def _put_attr_locked(self, path: str, status: FileStatus | None, expiry: float) -> None:
        self._attrs[path] = (status, expiry)
        self._attrs.move_to_end(path)
        while len(self._attrs) > self.max_entries:
            self._attrs.popitem(last=False)

    # -- listings ---------------------------------------------------------------
    def get_listing(self, path: str) -> list[FileStatus] | None:
        if not self.enabled:
            return None
        with self._lock:
            hit = self._dirs.get(path)
            if hit is None:
                return None
            if hit[2] <= self._clock():
                self._drop_listing_locked(path)
                return None
            return hit[0]

    def listed_absent(self, path: str) -> bool:
        """True if the parent's fresh listing says ``path`` does not exist."""
        if not self.enabled or path == "/":
            return False
        parent, name = posixpath.split(path)
        with self._lock:
            hit = self._dirs.get(parent or "/")
            return hit is not None and hit[2] > self._clock() and name not in hit[1]

    def put_listing(self, path: str, children: list[FileStatus],
                    token: int | None = None) -> None:
        """Remember a listing and the attributes of every child (one RPC, not N)."""
        if not self.enabled:
            return
        with self._lock:
            if token is not None and token != self._generation:
                return
            expiry = self._clock() + self.ttl
            base = path.rstrip("/")
            for child in children:
                self._put_attr_locked(f"{base}/{child.name}", child, expiry)
            old = self._dirs.pop(path, None)
            if old is not None:
                self._listed -= len(old[0])
            if len(children) > self.max_entries:
                return  # attributes are cached (LRU); the listing itself is too big to keep
            self._dirs[path] = (children, frozenset(c.name for c in children), expiry)
            self._listed += len(children)
            while len(self._dirs) > self.max_listings or self._listed > self.max_entries:
                _p, (gone, _names, _exp) = self._dirs.popitem(last=False)
                self._listed -= len(gone)

    # -- invalidation -----------------------------------------------------------
    def invalidate(self, path: str) -> None:
        """Forget ``path`` (and its parent's listing, which names it)."""
        with self._lock:
            self._generation += 1
            self._attrs.pop(path, None)
            self._drop_listing_locked(path)
            self._drop_listing_locked(posixpath.dirname(path) or "/")

    def invalidate_tree(self, path: str) -> None:
        """Forget ``path`` and everything below it (after a directory rename/delete)."""
        prefix = path.rstrip("/") + "/"
        with self._lock:
            self._generation += 1
            for p in [p for p in self._attrs if p == path or p.startswith(prefix)]:
                del self._attrs[p]
            for p in [p for p in self._dirs if p == path or p.startswith(prefix)]:
                self._drop_listing_locked(p)
            self._drop_listing_locked(posixpath.dirname(path) or "/")

    def _drop_listing_locked(self, path: str) -> None:
        gone = self._dirs.pop(path, None)
        if gone is not None:
            self._listed -= len(gone[0])

    def __len__(self) -> int:
        return len(self._attrs)
