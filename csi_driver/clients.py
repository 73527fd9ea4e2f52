"""HDFS clients for the driver, one per (cluster, identity), reused across calls.

Every HDFS call the driver makes acts as somebody: the identity in the
request's secrets if there is one, else the driver's ``--hdfs-user``.
Clients are cached because creating one costs a NameNode handshake; a
Kerberos client is keyed by its keytab file too and dropped when that file
goes away (NodeUnstageVolume), so no cached client outlives its credentials.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Callable, Iterator

import hdfs_client
from hdfs_client import HdfsClient
from hdfs_client.errors import HdfsTimeout
from hdfs_client.wrappers import DelegatingClient

log = logging.getLogger(__name__)

Key = tuple[str, str | None, str | None, str | None]

#: Client settings for a control plane: a NameNode that refuses connections
#: fails a call in about a second instead of being retried forever (the
#: default for a single, non-HA NameNode), so the CO gets UNAVAILABLE and
#: retries on its own schedule.
CLIENT_CONFIG = {
    "dfs.client.failover.max.attempts": "3",
    "dfs.client.failover.sleep.base.millis": "100",
    "dfs.client.failover.sleep.max.millis": "1000",
}


class BoundedClient(DelegatingClient):
    """Every metadata call finishes within ``timeout`` seconds or raises HdfsTimeout.

    A NameNode that accepts connections but never answers would otherwise hold
    a gRPC worker (and the volume's in-flight slot) indefinitely.  The stuck
    call keeps running in its daemon thread; only the caller is released.
    """

    def __init__(self, inner: HdfsClient, timeout: float):
        super().__init__(inner)
        self.timeout = timeout

    def _call(self, op: str, fn: Callable[[], object]) -> object:
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                result["error"] = exc

        worker = threading.Thread(target=run, name=f"hdfs-{op}", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise HdfsTimeout(f"HDFS {op} did not answer within {self.timeout:.0f} s")
        if "error" in result:
            raise result["error"]
        return result.get("value")


class ClientPool:
    def __init__(self, default_user: str | None,
                 connect: Callable[..., HdfsClient] = hdfs_client.connect,
                 timeout: float = 30.0):
        self.default_user = default_user
        self._raw_connect = connect
        self.timeout = timeout
        self._lock = threading.Lock()
        self._clients: dict[Key, HdfsClient] = {}

    def _connect(self, cluster_uri: str, **kwargs: Any) -> HdfsClient:
        if self._raw_connect is hdfs_client.connect:
            kwargs.setdefault("config", dict(CLIENT_CONFIG))
        return BoundedClient(self._raw_connect(cluster_uri, **kwargs), self.timeout)

    def get(self, cluster_uri: str, *, user: str | None = None, principal: str | None = None,
            keytab_file: str | None = None) -> HdfsClient:
        if principal is None:
            user = user or self.default_user
        key: Key = (cluster_uri, user, principal, keytab_file)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                kwargs: dict[str, object] = {}
                if principal is not None:
                    kwargs["kerberos_principal"] = principal
                    kwargs["kerberos_keytab"] = keytab_file
                elif user:
                    kwargs["user"] = user
                client = self._connect(cluster_uri, **kwargs)
                self._clients[key] = client
            return client

    def drop(self, cluster_uri: str, *, user: str | None = None, principal: str | None = None,
             keytab_file: str | None = None) -> None:
        if principal is None:
            user = user or self.default_user
        with self._lock:
            client = self._clients.pop((cluster_uri, user, principal, keytab_file), None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    @contextlib.contextmanager
    def temporary(self, cluster_uri: str, **kwargs: object) -> Iterator[HdfsClient]:
        """A client that is closed after use (one-off Kerberos identities)."""
        client = self._connect(cluster_uri, **kwargs)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            with contextlib.suppress(Exception):
                c.close()
