"""Client helpers shared by the minidfs tests (imported by name: a unique module name, since
``conftest`` is ambiguous when several test directories have one)."""

from __future__ import annotations

import os
from typing import Any

# hdfs-native pools DataNode connections process-wide; a pooled connection of a
# dropped Client (whose tokio runtime is shutting down) can fail another client's
# next read.  Clients made here are therefore never dropped during the session.
_KEEP_ALIVE: list[Any] = []


def native_as(uri: str, user: str | None = None) -> Any:
    """An hdfs_native.Client that really runs as ``user``.

    hdfs-native reads HADOOP_USER_NAME when it opens its NameNode connection
    (the first call), not when the Client is built, so the variable must be
    set across a first call.
    """
    import hdfs_native

    old = os.environ.get("HADOOP_USER_NAME")
    if user is not None:
        os.environ["HADOOP_USER_NAME"] = user
    try:
        client = hdfs_native.Client(uri)
        client.get_file_info("/")
    finally:
        if old is None:
            os.environ.pop("HADOOP_USER_NAME", None)
        else:
            os.environ["HADOOP_USER_NAME"] = old
    _KEEP_ALIVE.append(client)
    return client


def seam_as(uri: str, user: str) -> Any:
    """An HdfsClient (the seam) whose NameNode connection runs as ``user``."""
    from hdfs_client import connect

    old = os.environ.get("HADOOP_USER_NAME")
    os.environ["HADOOP_USER_NAME"] = user
    try:
        client = connect(uri, user=user)
        client.get_status("/")
    finally:
        if old is None:
            os.environ.pop("HADOOP_USER_NAME", None)
        else:
            os.environ["HADOOP_USER_NAME"] = old
    _KEEP_ALIVE.append(client)
    return client
