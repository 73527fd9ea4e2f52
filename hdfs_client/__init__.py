"""The HdfsClient seam: one interface, several implementations.

* :class:`hdfs_client.native.NativeHdfsClient`: the real client (hdfs-native).
* :mod:`hdfs_client.wrappers`: fault-injecting and throughput-limited
  wrappers that stack on any client, for tests and benchmarks.

``connect()`` is the one factory the rest of the code uses.
"""

from __future__ import annotations

from hdfs_client.base import ContentSummary, FileStatus, FsStats, HdfsClient, HdfsReader, HdfsWriter
from hdfs_client.errors import HdfsError


def connect(uri: str, **kwargs: object) -> HdfsClient:
    """Open a client for ``hdfs://authority`` (any path part is ignored)."""
    from hdfs_client.native import NativeHdfsClient

    return NativeHdfsClient(uri, **kwargs)  # type: ignore[arg-type]


__all__ = [
    "ContentSummary", "FileStatus", "FsStats", "HdfsClient", "HdfsError", "HdfsReader",
    "HdfsWriter", "connect",
]
