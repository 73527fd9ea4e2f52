"""Wrappers that stack on any :class:`HdfsClient` for tests and benchmarks.

* :class:`DelegatingClient` forwards everything (base for the others).
* :class:`FaultInjectingClient` fails or delays named operations on demand:
  faults a real cluster cannot produce when a test wants them.
* :class:`ThrottledClient` caps bytes per second per open reader and adds
  per-call latency, to model a remote cluster from a local one.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

from hdfs_client import errors
from hdfs_client.base import (
    CacheDirective,
    ContentSummary,
    FileStatus,
    FsStats,
    HdfsClient,
    HdfsReader,
    HdfsWriter,
)
from hdfs_csi_common.ratelimit import TokenBucket


class DelegatingClient(HdfsClient):
    def __init__(self, inner: HdfsClient):
        self.inner = inner
        self.uri = inner.uri

    def _call(self, op: str, fn: Callable[[], object]) -> object:
        return fn()

    def get_status(self, path: str) -> FileStatus:
        return self._call("get_status", lambda: self.inner.get_status(path))  # type: ignore[return-value]

    def list_dir(self, path: str) -> Iterator[FileStatus]:
        return iter(self._call("list_dir", lambda: list(self.inner.list_dir(path))))  # type: ignore[call-overload]

    def content_summary(self, path: str) -> ContentSummary:
        return self._call("content_summary", lambda: self.inner.content_summary(path))  # type: ignore[return-value]

    def open_reader(self, path: str) -> HdfsReader:
        reader = self._call("open_reader", lambda: self.inner.open_reader(path))
        return self._wrap_reader(reader)  # type: ignore[arg-type]

    def _wrap_reader(self, reader: HdfsReader) -> HdfsReader:
        return reader

    def create(self, path: str, **kwargs: object) -> HdfsWriter:  # type: ignore[override]
        return self._call("create", lambda: self.inner.create(path, **kwargs))  # type: ignore[arg-type,return-value]

    def append(self, path: str) -> HdfsWriter:
        return self._call("append", lambda: self.inner.append(path))  # type: ignore[return-value]

    def mkdirs(self, path: str, permission: int = 0o755, create_parent: bool = True) -> None:
        self._call("mkdirs", lambda: self.inner.mkdirs(path, permission, create_parent))

    def rename(self, src: str, dst: str, overwrite: bool = False) -> None:
        self._call("rename", lambda: self.inner.rename(src, dst, overwrite))

    def delete(self, path: str, recursive: bool = False) -> bool:
        return self._call("delete", lambda: self.inner.delete(path, recursive))  # type: ignore[return-value]

    def set_permission(self, path: str, permission: int) -> None:
        self._call("set_permission", lambda: self.inner.set_permission(path, permission))

    def set_owner(self, path: str, owner: str | None = None, group: str | None = None) -> None:
        self._call("set_owner", lambda: self.inner.set_owner(path, owner, group))

    def set_times(self, path: str, mtime_ms: int, atime_ms: int) -> None:
        self._call("set_times", lambda: self.inner.set_times(path, mtime_ms, atime_ms))

    def set_replication(self, path: str, replication: int) -> bool:
        return self._call("set_replication", lambda: self.inner.set_replication(path, replication))  # type: ignore[return-value]

    def recover_lease(self, path: str) -> bool:
        return self._call("recover_lease", lambda: self.inner.recover_lease(path))  # type: ignore[return-value]

    def set_quota(self, path: str, namespace_quota: int | None, space_quota: int | None) -> None:
        self._call("set_quota", lambda: self.inner.set_quota(path, namespace_quota, space_quota))

    def fs_stats(self) -> FsStats:
        return self._call("fs_stats", lambda: self.inner.fs_stats())  # type: ignore[return-value]

    def add_cache_directive(self, path: str, pool: str, *, ttl_s: float,
                            replication: int | None = None) -> int:
        return self._call("add_cache_directive", lambda: self.inner.add_cache_directive(  # type: ignore[return-value]
            path, pool, ttl_s=ttl_s, replication=replication))

    def renew_cache_directive(self, directive_id: int, *, ttl_s: float) -> None:
        self._call("renew_cache_directive",
                   lambda: self.inner.renew_cache_directive(directive_id, ttl_s=ttl_s))

    def remove_cache_directive(self, directive_id: int) -> None:
        self._call("remove_cache_directive",
                   lambda: self.inner.remove_cache_directive(directive_id))

    def list_cache_directives(self, *, pool: str | None = None,
                              path: str | None = None) -> list[CacheDirective]:
        return self._call("list_cache_directives", lambda: self.inner.list_cache_directives(  # type: ignore[return-value]
            pool=pool, path=path))

    def close(self) -> None:
        self.inner.close()


class FaultInjectingClient(DelegatingClient):
    """Fail the next N calls of an operation, or delay every call of one.

    ``read_range`` on readers counts as operation ``"read"``.
    """

    def __init__(self, inner: HdfsClient):
        super().__init__(inner)
        self._lock = threading.Lock()
        self._failures: dict[str, list[errors.HdfsError]] = {}
        self._delays: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def fail_next(self, op: str, count: int = 1, error: errors.HdfsError | None = None) -> None:
        err = error or errors.HdfsIOError(f"injected failure in {op}")
        with self._lock:
            self._failures.setdefault(op, []).extend([err] * count)

    def delay(self, op: str, seconds: float) -> None:
        with self._lock:
            self._delays[op] = seconds

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    def _before(self, op: str) -> None:
        with self._lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            pending = self._failures.get(op)
            err = pending.pop(0) if pending else None
            delay = self._delays.get(op, 0.0)
        if delay:
            time.sleep(delay)
        if err is not None:
            raise err

    def _call(self, op: str, fn: Callable[[], object]) -> object:
        self._before(op)
        return fn()

    def _wrap_reader(self, reader: HdfsReader) -> HdfsReader:
        return _HookedReader(reader, lambda n: self._before("read"))


class ThrottledClient(DelegatingClient):
    """Model a remote cluster: per-reader bandwidth cap and per-call latency."""

    def __init__(self, inner: HdfsClient, *, bytes_per_second_per_stream: float | None = None,
                 latency_s: float = 0.0):
        super().__init__(inner)
        self.rate = bytes_per_second_per_stream
        self.latency_s = latency_s

    def _call(self, op: str, fn: Callable[[], object]) -> object:
        if self.latency_s:
            time.sleep(self.latency_s)
        return fn()

    def _wrap_reader(self, reader: HdfsReader) -> HdfsReader:
        if not self.rate and not self.latency_s:
            return reader
        latency = self.latency_s
        bucket = TokenBucket(self.rate) if self.rate else None  # one bucket per stream

        def hook(n: int) -> None:
            if latency:
                time.sleep(latency)
            if bucket is not None:
                bucket.acquire(n)

        return _HookedReader(reader, hook)


class _HookedReader(HdfsReader):
    def __init__(self, inner: HdfsReader, hook: Callable[[int], None]):
        self._inner = inner
        self._hook = hook
        self.size = inner.size

    def read_range(self, offset: int, length: int) -> bytes:
        self._hook(length)
        return self._inner.read_range(offset, length)

    def close(self) -> None:
        self._inner.close()
