"""The seam between hdfs-csi and HDFS.

Everything above this module (FUSE filesystem core, CSI controller, benchmarks)
talks to an :class:`HdfsClient` and catches :mod:`hdfs_client.errors`.  The
real implementation wraps ``hdfs-native``; tests and benchmarks stack
fault-injecting and throughput-limited wrappers on top of it.  Nothing above
the seam imports ``hdfs_native`` directly, so a client panic or an
unexplained ``RuntimeError`` can never escape as anything but ``HdfsIOError``.
"""

from __future__ import annotations

import abc
import posixpath
from dataclasses import dataclass
from typing import Iterator

from hdfs_client import errors


@dataclass(frozen=True)
class FileStatus:
    """Attributes of one HDFS inode, as the layers above need them."""

    path: str            #: absolute HDFS path
    is_dir: bool
    length: int          #: bytes; 0 for directories
    permission: int      #: lower 12 bits (rwx triplets + sticky)
    owner: str
    group: str
    mtime_ms: int
    atime_ms: int
    replication: int = 0
    block_size: int = 0
    #: HDFS's inode id (``fileId``): unique in the cluster, never reused, kept by
    #: renames and appends, new for a file created again (overwrite).  0 = unknown
    #: (a client that cannot read it: hdfs-native alone, Kerberos without our RPC).
    file_id: int = 0

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/")) or "/"


@dataclass(frozen=True)
class ContentSummary:
    """``hdfs dfs -count -q`` in one record; quotas of -1 mean "none"."""

    length: int
    file_count: int
    directory_count: int
    quota: int            #: namespace quota (files + directories), -1 if none
    space_consumed: int   #: bytes including replication
    space_quota: int      #: bytes including replication, -1 if none


@dataclass(frozen=True)
class CacheDirective:
    """One path-based cache directive of HDFS Centralized Cache Management.

    A directive on a directory covers the files directly in it (not those of
    its subdirectories: HDFS does not recurse). ``expiry_ms`` is absolute
    (milliseconds since the epoch); the byte and file counts are what the
    NameNode last saw the DataNodes hold in memory.
    """

    id: int
    path: str
    pool: str
    replication: int
    expiry_ms: int
    bytes_needed: int = 0
    bytes_cached: int = 0
    files_needed: int = 0
    files_cached: int = 0
    expired: bool = False


@dataclass(frozen=True)
class FsStats:
    """Cluster-wide capacity (``getFsStats``), for ``statfs`` and ``GetCapacity``."""

    capacity: int
    used: int
    remaining: int


class HdfsReader(abc.ABC):
    """An open file for positional reads; safe to call from several threads."""

    size: int

    @abc.abstractmethod
    def read_range(self, offset: int, length: int) -> bytes:
        """Return up to ``length`` bytes at ``offset`` (short only at end of file)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "HdfsReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HdfsWriter(abc.ABC):
    """A file open for sequential writing (create or append)."""

    @abc.abstractmethod
    def write(self, data: bytes | memoryview) -> int: ...

    @abc.abstractmethod
    def hsync(self) -> None:
        """Make everything written so far durable and visible to readers."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finish the file; errors of earlier writes surface here at the latest."""

    def __enter__(self) -> "HdfsWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HdfsClient(abc.ABC):
    """Operations hdfs-csi needs from HDFS.  Paths are absolute HDFS paths."""

    uri: str

    # -- metadata -----------------------------------------------------------
    @abc.abstractmethod
    def get_status(self, path: str) -> FileStatus: ...

    @abc.abstractmethod
    def list_dir(self, path: str) -> Iterator[FileStatus]:
        """Children of a directory, paged by the client; order as the NameNode sends."""

    @abc.abstractmethod
    def content_summary(self, path: str) -> ContentSummary: ...

    def exists(self, path: str) -> bool:
        from hdfs_client.errors import NotFound

        try:
            self.get_status(path)
            return True
        except NotFound:
            return False

    # -- data -----------------------------------------------------------------
    @abc.abstractmethod
    def open_reader(self, path: str) -> HdfsReader: ...

    @abc.abstractmethod
    def create(
        self,
        path: str,
        *,
        overwrite: bool = False,
        permission: int = 0o644,
        create_parent: bool = False,
        replication: int | None = None,
        block_size: int | None = None,
    ) -> HdfsWriter: ...

    @abc.abstractmethod
    def append(self, path: str) -> HdfsWriter: ...

    def read_file(self, path: str) -> bytes:
        with self.open_reader(path) as r:
            return r.read_range(0, r.size)

    def write_file(self, path: str, data: bytes, *, overwrite: bool = True,
                   create_parent: bool = True) -> None:
        with self.create(path, overwrite=overwrite, create_parent=create_parent) as w:
            view = memoryview(data)
            while view:
                n = w.write(view)
                view = view[n:]

    # -- namespace ------------------------------------------------------------
    @abc.abstractmethod
    def mkdirs(self, path: str, permission: int = 0o755, create_parent: bool = True) -> None: ...

    @abc.abstractmethod
    def rename(self, src: str, dst: str, overwrite: bool = False) -> None: ...

    @abc.abstractmethod
    def delete(self, path: str, recursive: bool = False) -> bool: ...

    @abc.abstractmethod
    def set_permission(self, path: str, permission: int) -> None: ...

    @abc.abstractmethod
    def set_owner(self, path: str, owner: str | None = None, group: str | None = None) -> None: ...

    @abc.abstractmethod
    def set_times(self, path: str, mtime_ms: int, atime_ms: int) -> None: ...

    @abc.abstractmethod
    def set_replication(self, path: str, replication: int) -> bool: ...

    @abc.abstractmethod
    def recover_lease(self, path: str) -> bool: ...

    # -- administration (hdfs-native has no API for these) --------------------
    @abc.abstractmethod
    def set_quota(self, path: str, namespace_quota: int | None, space_quota: int | None) -> None:
        """Set quotas; ``None`` leaves one unchanged, ``-1`` clears it."""

    @abc.abstractmethod
    def fs_stats(self) -> FsStats: ...

    # -- Centralized Cache Management (the cluster's own DataNode memory cache) -
    def add_cache_directive(self, path: str, pool: str, *, ttl_s: float,
                            replication: int | None = None) -> int:
        """Ask the cluster to keep the files of ``path`` in DataNode memory for
        ``ttl_s`` seconds (``replication`` cached copies, default the pool's); the
        directive's id.  Not idempotent: a repeated call adds a second directive."""
        raise errors.Unsupported("this client has no cache directives")

    def renew_cache_directive(self, directive_id: int, *, ttl_s: float) -> None:
        """Move a directive's expiry to ``ttl_s`` seconds from now (InvalidRequest if
        it no longer exists)."""
        raise errors.Unsupported("this client has no cache directives")

    def remove_cache_directive(self, directive_id: int) -> None:
        raise errors.Unsupported("this client has no cache directives")

    def list_cache_directives(self, *, pool: str | None = None,
                              path: str | None = None) -> list[CacheDirective]:
        raise errors.Unsupported("this client has no cache directives")

    def close(self) -> None:  # noqa: B027 - optional hook, most clients hold nothing
        """Release connections; the client must not be used afterwards."""

    def __enter__(self) -> "HdfsClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
