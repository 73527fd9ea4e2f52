"""The real :class:`HdfsClient`: ``hdfs-native`` (Rust, native RPC, no JVM).

hdfs-native maps only three remote exceptions to Python built-ins; everything
else arrives as ``RuntimeError`` whose text names the Java class, and a bug in
the Rust core arrives as ``pyo3_runtime.PanicException`` (a BaseException, so
a plain ``except Exception`` misses it).  :func:`translate_errors` is the one
place where all of that becomes :mod:`hdfs_client.errors`.

Operations hdfs-native has no API for (quotas, cluster stats) go through our
own small Hadoop RPC client, :mod:`hdfs_client.admin_rpc`, and so do file
statuses (``get_status``, ``list_dir``) wherever that client can speak to the
cluster: hdfs-native's statuses lack the file id (:attr:`FileStatus.file_id`)
that the FUSE layer keys its disk cache and its open handles on.  Where it
cannot (Kerberos: our client has no SASL), statuses come from hdfs-native with
``file_id == 0`` and the layers above fall back to length + mtime.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import threading
import xml.etree.ElementTree as ET
from typing import Any, Callable, Iterator, TypeVar

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
from hdfs_client.uri import parse_hdfs_uri

log = logging.getLogger(__name__)

T = TypeVar("T")


#: hdfs-native's text for an exception the NameNode sent: Rust's Debug of
#: RPCError(class, message), the message with its escapes (\n, \t, \")
_RPC_ERROR = re.compile(r'RPCError\("([\w.$]+)", "((?:[^"\\]|\\.)*)"\)', re.S)


def _is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"


def map_exception(exc: BaseException, path: str | None = None) -> errors.HdfsError:
    """Turn whatever hdfs-native raised into a domain error."""
    if isinstance(exc, errors.HdfsError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return errors.NotFound(str(exc) or "not found", path=path)
    if isinstance(exc, FileExistsError):
        text = str(exc)
        # hdfs-native reports AlreadyBeingCreatedException as FileExistsError, sometimes
        # without the class name; the NameNode's message names the lease holder.
        if "AlreadyBeingCreated" in text or "currently owned" in text or "lease" in text.lower():
            return errors.LeaseConflict(text, path=path)
        return errors.AlreadyExists(text or "already exists", path=path)
    if isinstance(exc, IsADirectoryError):
        return errors.IsADirectory(str(exc), path=path)
    if isinstance(exc, NotADirectoryError):
        return errors.NotADirectory(str(exc), path=path)
    if isinstance(exc, PermissionError):
        return errors.PermissionDenied(str(exc), path=path)
    if _is_panic(exc):
        return errors.HdfsIOError(f"HDFS client panicked: {exc}", path=path)
    text = str(exc)
    remote = _RPC_ERROR.search(text)
    if remote:
        # RPCError("org.apache...Exception", "message\n\tat ...Java stack..."): the
        # class and the first line of Hadoop's message, as from_remote keeps them
        message = remote.group(2).encode("latin-1", "backslashreplace").decode(
            "unicode_escape", "replace")
        if remote.group(1) in errors.REMOTE_EXCEPTIONS:
            return errors.from_remote(remote.group(1), message, path=path)
        text = errors.first_line(message) or remote.group(1)
    for class_name, cls in errors.REMOTE_EXCEPTIONS.items():
        if class_name in text:
            return cls(text, path=path, remote_class=class_name)
    if "Path is not a file" in text:
        return errors.IsADirectory(text, path=path)
    if "is not a directory" in text.lower():
        return errors.NotADirectory(text, path=path)
    return errors.HdfsIOError(text or type(exc).__name__, path=path)


def translate_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator for methods whose first argument after self is the path."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        path = args[0] if args and isinstance(args[0], str) else None
        scope = getattr(self, "_scope", None)  # NativeHdfsClient's identity scope
        with _guard(path), (scope() if scope is not None else contextlib.nullcontext()):
            return fn(self, *args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _guard(path: str | None) -> Iterator[None]:
    try:
        yield
    except errors.HdfsError:
        raise
    except BaseException as exc:  # noqa: BLE001 - PanicException is a BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise map_exception(exc, path) from exc


class NativeReader(HdfsReader):
    def __init__(self, raw: Any, path: str):
        self._raw = raw
        self._path = path
        size = raw.size  # a property in hdfs-native 0.14 (a method in older releases)
        self.size = int(size() if callable(size) else size)

    def read_range(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        with _guard(self._path):
            return bytes(self._raw.read_range(offset, length))

    def close(self) -> None:
        with _guard(self._path):
            self._raw.close()


class NativeWriter(HdfsWriter):
    def __init__(self, raw: Any, path: str):
        self._raw = raw
        self._path = path
        self._closed = False

    def write(self, data: bytes | memoryview) -> int:
        with _guard(self._path):
            return int(self._raw.write(data))

    def hsync(self) -> None:
        with _guard(self._path):
            self._raw.hsync()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _guard(self._path):
            self._raw.close()


def _status(raw: Any, path: str) -> FileStatus:
    return FileStatus(
        path=path,
        is_dir=bool(raw.isdir),
        length=int(raw.length),
        permission=int(raw.permission),
        owner=str(raw.owner),
        group=str(raw.group),
        mtime_ms=int(raw.modification_time),
        atime_ms=int(raw.access_time),
        replication=int(raw.replication or 0),
        block_size=int(raw.blocksize or 0),
    )


class NativeHdfsClient(HdfsClient):
    """hdfs-native behind the seam.

    ``user`` sets the simple-auth identity (what ``HADOOP_USER_NAME`` does for
    the Hadoop CLI); ``kerberos_principal`` + ``kerberos_keytab`` switch to
    Kerberos.  ``config`` is passed through as Hadoop configuration keys
    (HA nameservices, viewfs mount tables), and ``config_dir`` points at a
    directory with core-site.xml / hdfs-site.xml.
    """

    def __init__(
        self,
        uri: str,
        *,
        user: str | None = None,
        config: dict[str, str] | None = None,
        config_dir: str | None = None,
        kerberos_principal: str | None = None,
        kerberos_keytab: str | None = None,
    ):
        loc = parse_hdfs_uri(uri)
        self.uri = loc.cluster_uri
        self.user = user
        self._config = dict(config or {})
        if kerberos_principal is not None:
            # A principal means Kerberos, whatever the site files say: hdfs-native
            # only runs its SASL exchange when the configuration asks for it.
            self._config["hadoop.security.authentication"] = "kerberos"
        self._kerberos = (kerberos_principal, kerberos_keytab)
        # Our own RPC client sees the same Hadoop configuration hdfs-native reads
        # (HA nameservices from the site files), explicit keys first.
        self._rpc_config = {**site_config(config_dir), **self._config}
        self._own_statuses = own_rpc_usable(loc.scheme, self._rpc_config, kerberos_principal,
                                            kerberos_keytab)
        self._admin: Any = None
        self._admin_lock = threading.Lock()
        # A client acting as another simple-auth user than the process must set
        # HADOOP_USER_NAME while hdfs-native (0.14) opens its NameNode connection,
        # which happens lazily inside a call; see _IdentityScope.
        self._scope = _IdentityScope.for_user(user if kerberos_principal is None else None)
        key = (self.uri, user, tuple(sorted(self._config.items())), config_dir,
               kerberos_principal, kerberos_keytab)
        with self._scope(), _guard(None):
            self._client = _shared_raw_client(key, lambda: _new_raw_client(
                self.uri, self._config, config_dir, kerberos_principal, kerberos_keytab))

    # -- metadata -------------------------------------------------------------
    def get_status(self, path: str) -> FileStatus:
        if self._own_statuses:
            try:
                return self._admin_client().get_file_info(path)  # type: ignore[no-any-return]
            except errors.Unsupported as exc:
                if exc.remote_class:  # the NameNode's answer, not a failed login
                    raise
                self._no_own_statuses(exc)
        return self._native_status(path)

    def _no_own_statuses(self, exc: errors.HdfsError) -> None:
        """Our client cannot talk to this NameNode (it wants RPC integrity or privacy,
        or another login): statuses come from hdfs-native, without file ids."""
        if self._own_statuses:
            self._own_statuses = False
            log.warning("file statuses from hdfs-native, without file ids (versions are "
                        "length + mtime): %s", exc)

    @translate_errors
    def _native_status(self, path: str) -> FileStatus:
        return _status(self._client.get_file_info(path), path)

    def list_dir(self, path: str) -> Iterator[FileStatus]:
        if self._own_statuses:
            return self._own_list(path)
        return self._native_list(path)

    def _own_list(self, path: str) -> Iterator[FileStatus]:
        it = self._admin_client().list_status(path)
        try:
            first = next(it)
        except StopIteration:
            return
        except errors.Unsupported as exc:
            if exc.remote_class:
                raise
            self._no_own_statuses(exc)
            yield from self._native_list(path)
            return
        yield first
        yield from it

    def _native_list(self, path: str) -> Iterator[FileStatus]:
        base = path.rstrip("/")
        with _guard(path), self._scope():
            it = self._client.list_status(path, False)
        while True:
            with _guard(path), self._scope():
                try:
                    raw = next(it)
                except StopIteration:
                    return
            name = str(raw.path)
            full = name if name.startswith("/") else f"{base}/{name}"
            yield _status(raw, full)

    @translate_errors
    def content_summary(self, path: str) -> ContentSummary:
        s = self._client.get_content_summary(path)
        return ContentSummary(
            length=int(s.length),
            file_count=int(s.file_count),
            directory_count=int(s.directory_count),
            quota=_quota(s.quota),
            space_consumed=int(s.space_consumed),
            space_quota=_quota(s.space_quota),
        )

    # -- data -----------------------------------------------------------------
    @translate_errors
    def open_reader(self, path: str) -> HdfsReader:
        return NativeReader(self._client.read(path), path)

    @translate_errors
    def create(self, path: str, *, overwrite: bool = False, permission: int = 0o644,
               create_parent: bool = False, replication: int | None = None,
               block_size: int | None = None) -> HdfsWriter:
        import hdfs_native

        opts = hdfs_native.WriteOptions(
            block_size=block_size,
            replication=replication,
            permission=permission,
            overwrite=overwrite,
            create_parent=create_parent,
        )
        return NativeWriter(self._client.create(path, opts), path)

    @translate_errors
    def append(self, path: str) -> HdfsWriter:
        return NativeWriter(self._client.append(path), path)

    # -- namespace ------------------------------------------------------------
    @translate_errors
    def mkdirs(self, path: str, permission: int = 0o755, create_parent: bool = True) -> None:
        self._client.mkdirs(path, permission, create_parent)

    @translate_errors
    def rename(self, src: str, dst: str, overwrite: bool = False) -> None:
        self._client.rename(src, dst, overwrite)

    @translate_errors
    def delete(self, path: str, recursive: bool = False) -> bool:
        return bool(self._client.delete(path, recursive))

    @translate_errors
    def set_permission(self, path: str, permission: int) -> None:
        self._client.set_permission(path, permission)

    @translate_errors
    def set_owner(self, path: str, owner: str | None = None, group: str | None = None) -> None:
        self._client.set_owner(path, owner, group)

    @translate_errors
    def set_times(self, path: str, mtime_ms: int, atime_ms: int) -> None:
        self._client.set_times(path, mtime_ms, atime_ms)

    @translate_errors
    def set_replication(self, path: str, replication: int) -> bool:
        return bool(self._client.set_replication(path, replication))

    @translate_errors
    def recover_lease(self, path: str) -> bool:
        return bool(self._client.recover_lease(path))

    # -- administration -------------------------------------------------------
    def _admin_client(self) -> Any:
        with self._admin_lock:
            if self._admin is None:
                from hdfs_client.admin_rpc import AdminRpcClient

                self._admin = AdminRpcClient(
                    self.uri, user=self.user, config=self._rpc_config,
                    kerberos_principal=self._kerberos[0], kerberos_keytab=self._kerberos[1],
                )
            return self._admin

    def set_quota(self, path: str, namespace_quota: int | None, space_quota: int | None) -> None:
        self._admin_client().set_quota(path, namespace_quota, space_quota)

    def fs_stats(self) -> FsStats:
        return self._admin_client().fs_stats()

    def add_cache_directive(self, path: str, pool: str, *, ttl_s: float,
                            replication: int | None = None) -> int:
        return self._admin_client().add_cache_directive(  # type: ignore[no-any-return]
            path, pool, ttl_s=ttl_s, replication=replication)

    def renew_cache_directive(self, directive_id: int, *, ttl_s: float) -> None:
        self._admin_client().renew_cache_directive(directive_id, ttl_s=ttl_s)

    def remove_cache_directive(self, directive_id: int) -> None:
        self._admin_client().remove_cache_directive(directive_id)

    def list_cache_directives(self, *, pool: str | None = None,
                              path: str | None = None) -> list[CacheDirective]:
        return self._admin_client().list_cache_directives(  # type: ignore[no-any-return]
            pool=pool, path=path)

    def close(self) -> None:
        # The hdfs-native client itself stays in the process-wide cache: hdfs-native
        # pools DataNode connections per process, and dropping a client has been seen
        # to break reads of other clients through connections it left in the pool.
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None


def site_config(config_dir: str | None) -> dict[str, str]:
    """The keys of ``core-site.xml`` and ``hdfs-site.xml`` where hdfs-native finds
    them: ``config_dir``, else ``$HADOOP_CONF_DIR``, else ``$HADOOP_HOME/etc/hadoop``."""
    if config_dir is None:
        config_dir = os.environ.get("HADOOP_CONF_DIR")
        if config_dir is None and os.environ.get("HADOOP_HOME"):
            config_dir = os.path.join(os.environ["HADOOP_HOME"], "etc", "hadoop")
    out: dict[str, str] = {}
    if not config_dir:
        return out
    for name in ("core-site.xml", "hdfs-site.xml"):
        try:
            root = ET.parse(os.path.join(config_dir, name)).getroot()
        except (OSError, ET.ParseError):
            continue
        for prop in root.iter("property"):
            key, value = prop.findtext("name"), prop.findtext("value")
            if key:
                out[key.strip()] = (value or "").strip()
    return out


def own_rpc_usable(scheme: str, config: dict[str, str], kerberos_principal: str | None,
                   kerberos_keytab: str | None = None) -> bool:
    """Whether our own RPC client can ask the NameNode for file statuses (they carry
    the file id): a plain ``hdfs://`` cluster (viewfs mount tables are resolved by
    hdfs-native only), with SIMPLE authentication or Kerberos from a keytab (our
    SASL speaks GSSAPI from a keytab; a ticket cache alone stays with hdfs-native)."""
    if scheme != "hdfs":
        return False
    if kerberos_principal is not None:
        protection = {p.strip().lower() for p in
                      config.get("hadoop.rpc.protection", "authentication").split(",")}
        return kerberos_keytab is not None and "authentication" in protection
    auth = config.get("hadoop.security.authentication", "simple").strip().lower()
    return auth == "simple"


def _quota(value: int) -> int:
    value = int(value)
    # HDFS reports "no quota" as -1 (or 2^64-1 on the wire); normalise both.
    return -1 if value < 0 or value >= 2**63 else value


def _new_raw_client(uri: str, config: dict[str, str], config_dir: str | None,
                    principal: str | None, keytab: str | None) -> Any:
    import hdfs_native  # imported here so that the seam itself needs no native code

    return hdfs_native.Client(uri, config=config or None, config_dir=config_dir,
                              kerberos_principal=principal, kerberos_keytab=keytab)


_raw_clients: dict[tuple[Any, ...], Any] = {}
_raw_clients_lock = threading.Lock()


def _shared_raw_client(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """One hdfs-native client per (cluster, identity, configuration) per process."""
    with _raw_clients_lock:
        client = _raw_clients.get(key)
        if client is None:
            client = _raw_clients[key] = make()
        return client


class _IdentityScope:
    """Runs hdfs-native calls as a given simple-auth user.

    hdfs-native 0.14 has no per-client user: it reads ``HADOOP_USER_NAME`` each
    time it opens a NameNode connection, lazily, inside whichever call needs
    one.  A process with a single identity (every FUSE daemon, the benchmark)
    pays nothing: its scope is a no-op.  Once any client in the process acts
    as a *different* user (the CSI driver serving several volumes), every
    call of every client runs under one lock with the variable set to that
    client's user, so a connection can only ever be opened under the right
    name.  The cost is serialised metadata calls in that process, which the
    driver's call rate easily affords.
    """

    _lock = threading.RLock()
    _multi_user = False  # set once a client acts as a user other than the process's

    def __init__(self, user: str | None):
        self.user = user

    @classmethod
    def for_user(cls, user: str | None) -> "_IdentityScope":
        if user is not None and user != _process_user():
            cls._multi_user = True
        return cls(user)

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if not _IdentityScope._multi_user:
            yield
            return
        with _IdentityScope._lock:
            old = os.environ.get("HADOOP_USER_NAME")
            if self.user is not None:
                os.environ["HADOOP_USER_NAME"] = self.user
            try:
                yield
            finally:
                if old is None:
                    os.environ.pop("HADOOP_USER_NAME", None)
                else:
                    os.environ["HADOOP_USER_NAME"] = old


def _process_user() -> str:
    import getpass

    return os.environ.get("HADOOP_USER_NAME") or getpass.getuser()
