"""Client helpers shared by the minidfs tests (imported by name: a unique module name, since
``conftest`` is ambiguous when several test directories have one)."""

from __future__ import annotations

from typing import Any

# hdfs-native pools DataNode connections process-wide; a pooled connection of a
# dropped Client (whose tokio runtime is shutting down) can fail another client's
# next read.  Clients made here are therefore never dropped during the session.
_KEEP_ALIVE: list[Any] = []


def native_as(uri: str) -> Any:
    """An hdfs_native.Client for the wire tests that bypass the seam, kept alive for the session."""
    import hdfs_native

    client = hdfs_native.Client(uri)
    client.get_file_info("/")
    _KEEP_ALIVE.append(client)
    return client


def seam_as(uri: str, user: str) -> Any:
    """An HdfsClient (the seam) acting as ``user``.

    No HADOOP_USER_NAME juggling here: the seam's own identity scope (see
    ``hdfs_client.native._IdentityScope``) must make every call run as ``user``,
    which is what the CSI driver relies on, so these tests exercise it.
    """
    from hdfs_client import connect

    client = connect(uri, user=user)
    client.get_status("/")
    _KEEP_ALIVE.append(client)
    return client
