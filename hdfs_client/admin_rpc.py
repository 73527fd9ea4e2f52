"""A minimal Hadoop RPC v9 client for the calls hdfs-native has no API for.

hdfs-native (our data-path client) cannot set quotas, read cluster
capacity or manage snapshots, and those are exactly what dynamic CSI volumes
and pinned datasets need.  Its file statuses also lack HDFS's file id
(``fileId`` in ``HdfsFileStatusProto``), the one identity a rewrite changes,
which the FUSE disk cache and open handles need to tell a rewritten file from
the one they hold: ``getFileInfo`` and ``getListing`` are here for that.
Pulling in a JVM for a few calls is out of the
question, so this speaks ClientNamenodeProtocol directly with the framing in
:mod:`hadoop_wire.rpc_framing` (shared with minidfs' server side).

Scope and known gaps:

* SIMPLE authentication, or Kerberos from a keytab (``kerberos_principal``
  + ``kerberos_keytab``): each connection runs the SASL GSSAPI exchange of
  :mod:`hdfs_client.rpc_sasl` before its connection context, with quality of
  protection "authentication" (Hadoop's default; a NameNode that insists on
  integrity or privacy is refused with a clear error).
* HA: a nameservice URI (``hdfs://ns``) is resolved through the usual
  ``dfs.ha.namenodes.<ns>`` / ``dfs.namenode.rpc-address.<ns>.<nn>`` keys in
  ``config``; the client fails over on connection errors and on
  ``StandbyException``.
* One call in flight per connection; concurrent calls open more connections
  (up to :attr:`AdminRpcClient.MAX_IDLE` are kept), since file statuses are
  asked for from many FUSE threads at once.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from hdfs_client import errors
from hadoop_wire import rpc_framing as w
from hdfs_client.base import CacheDirective, FileStatus, FsStats
from hdfs_client.uri import DEFAULT_PORT, parse_hdfs_uri
from hdfs_csi_pb.hadoop import hdfs_pb2 as hp
from hdfs_csi_pb.hadoop import namenode_pb2 as nn
from hdfs_csi_pb.hadoop import rpc_pb2

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

_STANDBY = "org.apache.hadoop.ipc.StandbyException"
_IS_DIR = hp.HdfsFileStatusProto.IS_DIR


def _addresses(authority: str, config: dict[str, str]) -> list[tuple[str, int]]:
    """host:port list for an authority that is either an address or an HA nameservice."""
    nn_ids = config.get(f"dfs.ha.namenodes.{authority}")
    if nn_ids:
        out = []
        for nn_id in (x.strip() for x in nn_ids.split(",") if x.strip()):
            addr = config.get(f"dfs.namenode.rpc-address.{authority}.{nn_id}")
            if addr:
                out.append(_split_hostport(addr))
        if out:
            return out
    return [_split_hostport(authority)]


def _split_hostport(text: str) -> tuple[str, int]:
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or DEFAULT_PORT)
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, DEFAULT_PORT
    return host, int(port)


class AdminRpcClient:
    """Thread-safe client for setQuota, getFsStats, the snapshot calls, the cache
    pool and directive calls of Centralized Cache Management, and the file status
    calls that carry HDFS's file id (``getFileInfo``, ``getListing``).

    Calls run on a small pool of connections, one call in flight per
    connection: the FUSE daemon asks for file statuses from many threads at
    once, and one shared connection would serialise them behind each other.
    """

    #: idle connections kept open; more are opened when calls overlap, and closed after
    MAX_IDLE = 8

    def __init__(self, uri: str, *, user: str | None = None,
                 config: dict[str, str] | None = None,
                 kerberos_principal: str | None = None, kerberos_keytab: str | None = None,
                 timeout: float = 30.0):
        if (kerberos_principal is None) != (kerberos_keytab is None):
            raise ValueError("kerberos_principal and kerberos_keytab go together")
        loc = parse_hdfs_uri(uri)
        config = dict(config or {})
        #: (principal, keytab, the NameNode principal to insist on, SIMPLE fallback
        #: allowed) or None for SIMPLE
        self._kerberos: tuple[str, str, str | None, bool] | None = None
        if kerberos_principal is not None and kerberos_keytab is not None:
            fallback = config.get("ipc.client.fallback-to-simple-auth-allowed", "false")
            self._kerberos = (kerberos_principal, kerberos_keytab,
                              config.get("dfs.namenode.kerberos.principal") or None,
                              fallback.strip().lower() == "true")
        self.uri = loc.cluster_uri
        self.user = user or os.environ.get("HADOOP_USER_NAME") or getpass.getuser()
        self.timeout = timeout
        self._addresses = _addresses(loc.authority, config)
        self._active = 0
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._closed = False
        self._client_id = uuid.uuid4().bytes

    # -- public API -------------------------------------------------------------------
    def set_quota(self, path: str, namespace_quota: int | None,
                  space_quota: int | None) -> None:
        """``None`` leaves a quota unchanged, ``-1`` clears it (HDFS QUOTA_RESET)."""
        req = nn.SetQuotaRequestProto(path=path,
                                      namespaceQuota=self._quota(namespace_quota, "namespace"),
                                      storagespaceQuota=self._quota(space_quota, "space"))
        self.call("setQuota", req, nn.SetQuotaResponseProto, path=path)

    @staticmethod
    def _quota(value: int | None, kind: str) -> int:
        if value is None:
            return w.QUOTA_DONT_SET
        if value == -1:
            return w.QUOTA_RESET
        if value < 0 or (kind == "namespace" and value == 0):
            raise ValueError(f"invalid {kind} quota {value} (use None to keep, -1 to clear)")
        return value

    def fs_stats(self) -> FsStats:
        resp = self.call("getFsStats", nn.GetFsStatusRequestProto(), nn.GetFsStatsResponseProto)
        return FsStats(capacity=resp.capacity, used=resp.used, remaining=resp.remaining)

    def get_file_info(self, path: str) -> FileStatus:
        """``getFileInfo``: the status of ``path`` with its file id; NotFound if absent
        (HDFS answers an absent path with an empty response, not an exception)."""
        resp = self.call("getFileInfo", nn.GetFileInfoRequestProto(src=path),
                         nn.GetFileInfoResponseProto, path=path)
        if not resp.HasField("fs"):
            raise errors.NotFound(f"File does not exist: {path}", path=path)
        return file_status(resp.fs, path)

    def list_status(self, path: str) -> Iterator[FileStatus]:
        """``getListing``, page by page (the NameNode's ``dfs.ls.limit``); a file lists
        as itself.  Pages resume after the last name seen, as HDFS clients do."""
        base = path.rstrip("/")
        after = b""
        while True:
            req = nn.GetListingRequestProto(src=path, startAfter=after, needLocation=False)
            resp = self.call("getListing", req, nn.GetListingResponseProto, path=path)
            if not resp.HasField("dirList"):
                raise errors.NotFound(f"File {path} does not exist.", path=path)
            page = resp.dirList.partialListing
            for proto in page:
                name = proto.path.decode("utf-8", "replace")
                full = path if not name else name if name.startswith("/") else f"{base}/{name}"
                yield file_status(proto, full)
            if not page or resp.dirList.remainingEntries <= 0:
                return
            after = page[-1].path

    def allow_snapshot(self, path: str) -> None:
        self.call("allowSnapshot", nn.AllowSnapshotRequestProto(snapshotRoot=path),
                  nn.AllowSnapshotResponseProto, path=path)

    def disallow_snapshot(self, path: str) -> None:
        self.call("disallowSnapshot", nn.DisallowSnapshotRequestProto(snapshotRoot=path),
                  nn.DisallowSnapshotResponseProto, path=path)

    def create_snapshot(self, path: str, name: str | None = None) -> str:
        """Returns the snapshot's path, ``<path>/.snapshot/<name>``."""
        req = nn.CreateSnapshotRequestProto(snapshotRoot=path)
        if name is not None:
            req.snapshotName = name
        return self.call("createSnapshot", req, nn.CreateSnapshotResponseProto,
                         path=path).snapshotPath

    def delete_snapshot(self, path: str, name: str) -> None:
        self.call("deleteSnapshot", nn.DeleteSnapshotRequestProto(snapshotRoot=path,
                                                                  snapshotName=name),
                  nn.DeleteSnapshotResponseProto, path=path)

    # -- Centralized Cache Management ------------------------------------------------
    def add_cache_pool(self, name: str, *, mode: int | None = None, limit: int | None = None,
                       max_relative_expiry_ms: int | None = None) -> None:
        """``hdfs cacheadmin -addPool`` (HDFS lets only the superuser do this)."""
        info = nn.CachePoolInfoProto(poolName=name)
        if mode is not None:
            info.mode = mode
        if limit is not None:
            info.limit = limit
        if max_relative_expiry_ms is not None:
            info.maxRelativeExpiry = max_relative_expiry_ms
        self.call("addCachePool", nn.AddCachePoolRequestProto(info=info),
                  nn.AddCachePoolResponseProto)

    def remove_cache_pool(self, name: str) -> None:
        self.call("removeCachePool", nn.RemoveCachePoolRequestProto(poolName=name),
                  nn.RemoveCachePoolResponseProto)

    def list_cache_pools(self) -> list[str]:
        names: list[str] = []
        prev = ""
        while True:
            resp = self.call("listCachePools", nn.ListCachePoolsRequestProto(prevPoolName=prev),
                             nn.ListCachePoolsResponseProto)
            names.extend(e.info.poolName for e in resp.entries)
            if not resp.hasMore or not resp.entries:
                return names
            prev = resp.entries[-1].info.poolName

    def add_cache_directive(self, path: str, pool: str, *, ttl_s: float,
                            replication: int | None = None) -> int:
        info = nn.CacheDirectiveInfoProto(path=path, pool=pool)
        if replication is not None:
            info.replication = replication
        info.expiration.millis = _ttl_ms(ttl_s)
        info.expiration.isRelative = True
        return self.call("addCacheDirective", nn.AddCacheDirectiveRequestProto(info=info),
                         nn.AddCacheDirectiveResponseProto, path=path).id

    def renew_cache_directive(self, directive_id: int, *, ttl_s: float) -> None:
        info = nn.CacheDirectiveInfoProto(id=directive_id)
        info.expiration.millis = _ttl_ms(ttl_s)
        info.expiration.isRelative = True
        self.call("modifyCacheDirective", nn.ModifyCacheDirectiveRequestProto(info=info),
                  nn.ModifyCacheDirectiveResponseProto)

    def remove_cache_directive(self, directive_id: int) -> None:
        self.call("removeCacheDirective", nn.RemoveCacheDirectiveRequestProto(id=directive_id),
                  nn.RemoveCacheDirectiveResponseProto)

    def list_cache_directives(self, *, pool: str | None = None,
                              path: str | None = None) -> list[CacheDirective]:
        """Every directive matching the filter, page by page (HDFS sends 100 a page)."""
        out: list[CacheDirective] = []
        prev = 0
        while True:
            flt = nn.CacheDirectiveInfoProto()
            if pool is not None:
                flt.pool = pool
            if path is not None:
                flt.path = path
            resp = self.call("listCacheDirectives",
                             nn.ListCacheDirectivesRequestProto(prevId=prev, filter=flt),
                             nn.ListCacheDirectivesResponseProto, path=path)
            for e in resp.elements:
                i, st = e.info, e.stats
                out.append(CacheDirective(
                    id=i.id, path=i.path, pool=i.pool, replication=i.replication,
                    expiry_ms=i.expiration.millis, bytes_needed=st.bytesNeeded,
                    bytes_cached=st.bytesCached, files_needed=st.filesNeeded,
                    files_cached=st.filesCached, expired=st.hasExpired))
            if not resp.hasMore or not resp.elements:
                return out
            prev = resp.elements[-1].info.id

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> AdminRpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls -------------------------------------------------------------------------
    def call(self, method: str, request: Message, response_cls: type[M], *,
             path: str | None = None) -> M:
        """One ClientNamenodeProtocol call; remote exceptions become domain errors.

        A broken connection (or a standby NameNode) is retried once per known
        NameNode address: every call made through this client is idempotent.
        """
        payload = request.SerializeToString()
        attempts = max(2, len(self._addresses) + 1)
        last_exc: Exception | None = None
        for _ in range(attempts):
            conn = self._take()
            try:
                resp = conn.call(method, payload, response_cls, path)
            except errors.HdfsError as exc:
                if exc.remote_class != _STANDBY:
                    self._give_back(conn)
                    raise
                last_exc = exc
                conn.close()
                self._fail_over(conn.address, always=True)
            except (OSError, w.WireError) as exc:
                last_exc = exc
                conn.close()
                self._fail_over(conn.address, always=False)
            else:
                self._give_back(conn)
                return resp
        if isinstance(last_exc, errors.HdfsError):
            raise last_exc
        if isinstance(last_exc, socket.timeout):
            raise errors.HdfsTimeout(f"{method} to {self.uri} timed out", path=path)
        raise errors.HdfsIOError(f"{method} to {self.uri} failed: {last_exc}", path=path)

    def _take(self) -> _Connection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if conn.address == self._active:
                    return conn
                conn.close()  # made before a fail-over
            address = self._active
        host, port = self._addresses[address]
        return _Connection(address, host, port, user=self.user, client_id=self._client_id,
                           timeout=self.timeout, kerberos=self._kerberos)

    def _give_back(self, conn: _Connection) -> None:
        with self._lock:
            if not conn.broken and not self._closed and len(self._idle) < self.MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _fail_over(self, address: int, *, always: bool) -> None:
        """Move to the next NameNode after ``address`` failed (once, however many
        calls saw it fail at the same time)."""
        with self._lock:
            if address == self._active and (always or len(self._addresses) > 1):
                self._active = (self._active + 1) % len(self._addresses)

    def raw_call(self, method: str, request: Message, response_cls: type[M]) -> M:
        """Any ClientNamenodeProtocol call (tests use it to reach methods the seam lacks)."""
        return self.call(method, request, response_cls)


class _Connection:
    """One NameNode connection: Hadoop RPC v9 framing, SIMPLE or Kerberos auth, one
    call at a time."""

    def __init__(self, address: int, host: str, port: int, *, user: str, client_id: bytes,
                 timeout: float, kerberos: tuple[str, str, str | None, bool] | None = None):
        self.address = address
        self._host, self._port = host, port
        self._user = user
        self._client_id = client_id
        self._timeout = timeout
        self._kerberos = kerberos
        self._sock: socket.socket | None = None
        self._call_id = 0
        self.broken = False

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        header = rpc_pb2.RpcRequestHeaderProto(
            rpcKind=rpc_pb2.RPC_PROTOCOL_BUFFER,
            rpcOp=rpc_pb2.RpcRequestHeaderProto.RPC_FINAL_PACKET,
            callId=w.CALL_ID_CONNECTION_CONTEXT, clientId=self._client_id, retryCount=-1)
        ctx = rpc_pb2.IpcConnectionContextProto(protocol=w.CLIENT_PROTOCOL)
        try:
            if self._kerberos is None:
                prefix = w.preamble(w.AUTH_NONE)
                ctx.userInfo.effectiveUser = self._user
            else:
                from hdfs_client import rpc_sasl

                principal, keytab, server_principal, fallback = self._kerberos
                prefix = b""  # authenticate() sent the SASL preamble
                # the authenticated user, or the NameNode would read it as impersonation;
                # after an allowed fall-back to SIMPLE, the principal's short name
                user = rpc_sasl.authenticate(sock, principal=principal, keytab=keytab,
                                             server_principal=server_principal,
                                             allow_simple_fallback=fallback)
                ctx.userInfo.effectiveUser = user or principal.split("/")[0].split("@")[0]
            sock.sendall(prefix +
                         w.build_frame(header.SerializeToString(), ctx.SerializeToString()))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._call_id = 0
        return sock

    def close(self) -> None:
        self.broken = True
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def call(self, method: str, payload: bytes, response_cls: type[M], path: str | None) -> M:
        try:
            sock = self._sock or self._connect()
        except BaseException:
            self.broken = True  # never pooled: a refused login is not retried on it
            raise
        call_id = self._call_id
        self._call_id += 1
        header = rpc_pb2.RpcRequestHeaderProto(
            rpcKind=rpc_pb2.RPC_PROTOCOL_BUFFER,
            rpcOp=rpc_pb2.RpcRequestHeaderProto.RPC_FINAL_PACKET,
            callId=call_id, clientId=self._client_id, retryCount=0)
        req_header = rpc_pb2.RequestHeaderProto(
            methodName=method, declaringClassProtocolName=w.CLIENT_PROTOCOL,
            clientProtocolVersion=w.CLIENT_PROTOCOL_VERSION)
        sock.sendall(w.build_frame(header.SerializeToString(),
                                   req_header.SerializeToString(), payload))
        while True:
            frame = w.recv_frame(sock)
            hdr_bytes, pos = w.split_delimited(frame, 0)
            resp_header = rpc_pb2.RpcResponseHeaderProto()
            try:
                resp_header.ParseFromString(bytes(hdr_bytes))
            except DecodeError as exc:
                raise w.WireError(f"bad response header: {exc}") from None
            if resp_header.callId != call_id & 0xFFFFFFFF:
                continue  # a stale answer to an abandoned call
            status = resp_header.status
            if status == rpc_pb2.RpcResponseHeaderProto.SUCCESS:
                body, _ = w.split_delimited(frame, pos)
                resp = response_cls()
                try:
                    resp.ParseFromString(bytes(body))
                except DecodeError as exc:
                    raise w.WireError(f"bad {response_cls.__name__}: {exc}") from None
                return resp
            if status == rpc_pb2.RpcResponseHeaderProto.FATAL:
                self.close()
            raise errors.from_remote(resp_header.exceptionClassName or "java.io.IOException",
                                     resp_header.errorMsg, path=path)


def _ttl_ms(ttl_s: float) -> int:
    if not ttl_s > 0:
        raise ValueError(f"a cache directive's time to live must be positive, got {ttl_s!r}")
    return int(ttl_s * 1000)


def file_status(proto: Any, path: str) -> FileStatus:
    """An ``HdfsFileStatusProto`` as the seam's :class:`FileStatus` (with the file id)."""
    return FileStatus(
        path=path,
        is_dir=proto.fileType == _IS_DIR,
        length=proto.length,
        permission=proto.permission.perm & 0o7777,
        owner=proto.owner,
        group=proto.group,
        mtime_ms=proto.modification_time,
        atime_ms=proto.access_time,
        replication=proto.block_replication,
        block_size=proto.blocksize,
        file_id=proto.fileId,
    )


def connect_admin(uri: str, **kwargs: Any) -> AdminRpcClient:
    return AdminRpcClient(uri, **kwargs)
