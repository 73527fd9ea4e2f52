"""Controller core: dynamic volumes as HDFS directories with a space quota.

Layout under a base path (``--base-path`` or a StorageClass ``basePath``)::

    /k8s/volumes/pvc-<uuid>/                    the volume (space quota = capacity x replication)
    /k8s/volumes/.hdfs-csi/volumes/pvc-<uuid>.json   its record: CSI name + parameters
    /k8s/volumes/.hdfs-csi/archive/pvc-<uuid>.<UTC time>/   volumes deleted with onDelete=archive

The record is written *before* the directory exists.  It is what makes the
driver safe and idempotent:

* CreateVolume with a name whose record exists compares parameters and
  capacity (same -> OK with the same id, different -> ALREADY_EXISTS), and a
  directory without a record is someone else's data (ALREADY_EXISTS, never
  adopted or modified).
* DeleteVolume acts only on a directory whose record exists, below an allowed
  base path, with a well-formed volume directory name.  A forged id pointing
  anywhere else deletes nothing.
* The delete policy comes from the record, never from the request.
* A crash between any two steps is repaired by the CO's retry: the record
  says what should exist, the directory and quota are (re)applied.

The current capacity is the quota itself (space quota / replication), so
expansion needs no second source of truth.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import posixpath
import secrets as _secrets
from dataclasses import dataclass
from typing import Iterator, Mapping

from csi_driver import errors
from csi_driver.capabilities import Capability, check_capabilities
from csi_driver.clients import ClientPool
from csi_driver.config import Config
from csi_driver.credentials import CredentialStore
from csi_driver.errors import AlreadyExists, FailedPrecondition, InvalidArgument, OutOfRange
from csi_driver.locks import InFlight
from csi_driver.params import (
    HDFS_URI, ON_DELETE, PATH, CreateParams, Credentials, parse_create_parameters, parse_secrets,
    parse_volume_context,
)
from csi_driver.paths import META_DIR, is_volume_dirname, volume_dirname
from csi_driver.scope import check_base_path, check_cluster, check_dynamic
from csi_driver.volumes import (
    VolumeRef, check_context_matches, check_volume_id, decode_volume_id, encode_volume_id,
    static_hdfs_path,
)
from hdfs_client import HdfsClient
from hdfs_client import errors as hdfs_errors

log = logging.getLogger(__name__)

RECORD_VERSION = 1
MAX_NAME_BYTES = 128
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class CapacityRange:
    required_bytes: int = 0
    limit_bytes: int = 0


@dataclass(frozen=True)
class ProvisionedVolume:
    volume_id: str
    capacity_bytes: int
    context: dict[str, str]


def records_dir(base_path: str) -> str:
    return posixpath.join(base_path, META_DIR, "volumes")


def archive_dir(base_path: str) -> str:
    return posixpath.join(base_path, META_DIR, "archive")


def record_path(ref: VolumeRef) -> str:
    return posixpath.join(records_dir(ref.base_path), f"{ref.dirname}.json")


def check_name(name: str) -> str:
    """CSI volume name rules: required, at most 128 bytes, no banned control characters."""
    if not name:
        raise InvalidArgument("name is required")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidArgument(f"name is longer than {MAX_NAME_BYTES} bytes")
    for ch in name:
        o = ord(ch)
        if o <= 0x08 or o in (0x0B, 0x0C) or 0x0E <= o <= 0x1F or 0x7F <= o <= 0x9F:
            raise InvalidArgument("name contains a control character the CSI spec bans")
    return name


class Provisioner:
    def __init__(self, config: Config, pool: ClientPool, inflight: InFlight | None = None):
        self.config = config
        self.pool = pool
        self.inflight = inflight or InFlight()
        self.creds = CredentialStore(config.state_dir)

    # -- helpers --------------------------------------------------------------------------
    @property
    def replication(self) -> int:
        return self.config.quota_replication

    def _cluster(self, explicit: str | None) -> str:
        cluster = explicit or self.config.hdfs_uri
        if not cluster:
            raise InvalidArgument(f"no {HDFS_URI} parameter and the driver has no "
                                  "--hdfs-uri default")
        return check_cluster(self.config, cluster)

    def _check_base(self, base: str) -> None:
        if not self.config.base_roots:
            raise FailedPrecondition("dynamic provisioning is disabled: the driver was started "
                                     "without --base-path")
        check_base_path(self.config, base)

    @staticmethod
    def _check_not_in_volume(client: HdfsClient, cluster: str, base: str) -> None:
        """Refuse a base path that is (or lies inside) a volume of this driver.

        StorageClass parameters are admin input, but a ``basePath`` pointing into
        a tenant's volume would put other tenants' volumes where that tenant can
        read, rename and delete them, under its quota.  A volume is recognised by
        its record, one ``exists`` per path component below the first.
        """
        parts = base.strip("/").split("/")
        for depth in range(2, len(parts) + 1):   # a volume is never directly under /
            ref = VolumeRef(cluster, "/" + "/".join(parts[:depth]))
            if is_volume_dirname(ref.dirname) and client.exists(record_path(ref)):
                raise InvalidArgument(f"base path {base} is inside the volume {ref.path}; "
                                      "volumes cannot be nested")

    @contextlib.contextmanager
    def _client(self, cluster: str, creds: Credentials | None) -> Iterator[HdfsClient]:
        """A client acting as the request's identity (or the driver's default)."""
        if creds is None or not creds.kerberos:
            yield self.pool.get(cluster, user=creds.user if creds else None)
            return
        # Kerberos identity from a controller secret: a keytab file that lives
        # only for this call, and a client that is not cached beyond it.
        key = "controller-" + _secrets.token_hex(8)
        path = self.creds.write_keytab(key, creds)
        try:
            with self.pool.temporary(cluster, kerberos_principal=creds.principal,
                                     kerberos_keytab=path) as client:
                yield client
        finally:
            self.creds.remove(key)

    def _resolve_capacity(self, rng: CapacityRange | None) -> int:
        req = rng.required_bytes if rng else 0
        lim = rng.limit_bytes if rng else 0
        if req < 0 or lim < 0:
            raise InvalidArgument("capacity_range values must not be negative")
        if req and lim and req > lim:
            raise InvalidArgument("capacity_range.required_bytes exceeds limit_bytes")
        capacity = req or lim or self.config.default_capacity
        if lim and capacity > lim:
            capacity = lim
        self._check_capacity(capacity)
        return capacity

    def _check_capacity(self, capacity: int) -> None:
        if self.config.max_capacity and capacity > self.config.max_capacity:
            raise OutOfRange(f"capacity {capacity} exceeds this driver's maximum volume size "
                             f"{self.config.max_capacity}")
        if capacity * self.replication > INT64_MAX:
            raise OutOfRange("capacity is too large for an HDFS space quota")

    def _read_record(self, client: HdfsClient, ref: VolumeRef) -> dict[str, object] | None:
        try:
            raw = client.read_file(record_path(ref))
        except hdfs_errors.NotFound:
            return None
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or not isinstance(record.get("parameters"), dict):
                raise ValueError("not a volume record")
        except ValueError as exc:
            raise FailedPrecondition(f"the record of volume {ref.path} is unreadable ({exc}); "
                                     f"inspect {record_path(ref)}") from None
        return record

    def _write_record(self, client: HdfsClient, ref: VolumeRef, name: str,
                      params: CreateParams) -> None:
        record = {
            "version": RECORD_VERSION,
            "name": name,
            "path": ref.path,
            "parameters": params.canonical(),
            "createdAt": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        data = json.dumps(record, sort_keys=True, indent=1).encode()
        with client.create(record_path(ref), overwrite=False, create_parent=True,
                           permission=0o644) as w:
            w.write(data)

    def _current_capacity(self, client: HdfsClient, ref: VolumeRef) -> int | None:
        quota = client.content_summary(ref.path).space_quota
        return None if quota < 0 else quota // self.replication

    def _context(self, ref: VolumeRef, params: CreateParams) -> dict[str, str]:
        ctx = {HDFS_URI: ref.cluster_uri, PATH: ref.path}
        ctx.update(params.mount.to_context())
        return ctx

    def _apply_directory(self, client: HdfsClient, ref: VolumeRef, params: CreateParams,
                         capacity: int) -> None:
        client.mkdirs(ref.path, permission=params.mode if params.mode is not None else 0o755)
        # mkdirs is subject to the NameNode's umask; set the mode explicitly.
        client.set_permission(ref.path, params.mode if params.mode is not None else 0o755)
        if params.owner or params.group:
            client.set_owner(ref.path, params.owner, params.group)
        client.set_quota(ref.path, None, capacity * self.replication)

    # -- CreateVolume ------------------------------------------------------------------------
    def create_volume(self, name: str, caps: list[Capability], rng: CapacityRange | None,
                      parameters: Mapping[str, str], secrets: Mapping[str, str],
                      *, content_source: bool = False,
                      mutable_parameters: Mapping[str, str] | None = None) -> ProvisionedVolume:
        check_name(name)
        check_capabilities(caps)
        params = parse_create_parameters(parameters)
        creds = parse_secrets(secrets)
        if content_source:
            raise InvalidArgument("volume_content_source is not supported (no snapshots or clones)")
        if mutable_parameters:
            raise InvalidArgument("mutable_parameters are not supported (no MODIFY_VOLUME)")
        if params.mount.read_only and any(not c.reader_only for c in caps):
            raise InvalidArgument("a readOnly StorageClass can only provision reader-only "
                                  "access modes")
        capacity = self._resolve_capacity(rng)
        cluster = self._cluster(params.hdfs_uri)
        base = params.base_path or self.config.base_path
        if not base:
            raise FailedPrecondition("no basePath parameter and the driver has no --base-path")
        self._check_base(base)
        ref = VolumeRef(cluster, posixpath.join(base, volume_dirname(name)))
        with self.inflight.hold(f"vol:{ref.uri}"), self._client(cluster, creds) as client:
            self._check_not_in_volume(client, cluster, base)
            record = self._read_record(client, ref)
            if record is None:
                if client.exists(ref.path):
                    raise AlreadyExists(f"{ref.path} exists but was not created by this driver "
                                        "for this name; refusing to take it over")
                try:
                    self._write_record(client, ref, name, params)
                    log.info("claimed %s for volume %r", ref.path, name)
                except hdfs_errors.AlreadyExists:
                    record = self._read_record(client, ref)  # a concurrent creator won the race
                    if record is None:
                        raise errors.Aborted(
                            "volume record is being written concurrently") from None
            if record is not None:
                if record.get("name") != name:
                    raise AlreadyExists(f"{ref.path} belongs to a different volume name")
                if record["parameters"] != params.canonical():
                    raise AlreadyExists(f"volume {name!r} exists with different parameters")
            current = self._current_capacity(client, ref) if client.exists(ref.path) else None
            if current is None:
                # First creation, or a retry after a crash part-way: (re)apply everything.
                self._apply_directory(client, ref, params, capacity)
                current = capacity
                log.info("created volume %r at %s with capacity %d bytes", name, ref.uri, capacity)
            else:
                req = rng.required_bytes if rng else 0
                lim = rng.limit_bytes if rng else 0
                if (req and current < req) or (lim and current > lim):
                    raise AlreadyExists(f"volume {name!r} exists with capacity {current} bytes, "
                                        "incompatible with the requested capacity_range")
            return ProvisionedVolume(encode_volume_id(ref), current, self._context(ref, params))

    # -- DeleteVolume ------------------------------------------------------------------------
    def _owned_ref(self, volume_id: str) -> VolumeRef | None:
        """The dynamic volume an id names, after checking it is one we may touch."""
        ref = decode_volume_id(volume_id)
        if ref is None:
            return None
        return check_dynamic(self.config, ref)

    def delete_volume(self, volume_id: str, secrets: Mapping[str, str]) -> None:
        ref = self._owned_ref(volume_id)
        creds = parse_secrets(secrets)
        if ref is None:
            log.info("DeleteVolume of an id this driver never issued: nothing to do")
            return
        with self.inflight.hold(f"vol:{ref.uri}"), self._client(ref.cluster_uri, creds) as client:
            record = self._read_record(client, ref)
            if record is None:
                log.info("volume %s has no record: already deleted (or never ours)", ref.uri)
                return
            if record.get("path") != ref.path:
                raise FailedPrecondition(f"the record for {ref.path} names {record.get('path')!r}; "
                                         "refusing to delete")
            policy = str(record["parameters"].get(ON_DELETE) or self.config.on_delete)  # type: ignore[union-attr]
            if policy == "delete":
                client.delete(ref.path, recursive=True)
            elif policy == "archive" and client.exists(ref.path):
                stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                dest = posixpath.join(archive_dir(ref.base_path), f"{ref.dirname}.{stamp}")
                client.mkdirs(archive_dir(ref.base_path))
                client.rename(ref.path, dest)
                log.info("archived volume %s to %s", ref.path, dest)
            client.delete(record_path(ref))
            log.info("deleted volume %s (policy %s)", ref.uri, policy)

    # -- ControllerExpandVolume ----------------------------------------------------------------
    def expand_volume(self, volume_id: str, rng: CapacityRange | None, cap: Capability | None,
                      secrets: Mapping[str, str]) -> int:
        if rng is None or (rng.required_bytes == 0 and rng.limit_bytes == 0):
            raise InvalidArgument("capacity_range is required")
        if rng.required_bytes < 0 or rng.limit_bytes < 0:
            raise InvalidArgument("capacity_range values must not be negative")
        if rng.required_bytes and rng.limit_bytes and rng.required_bytes > rng.limit_bytes:
            raise InvalidArgument("capacity_range.required_bytes exceeds limit_bytes")
        if cap is not None:
            check_capabilities([cap], "volume_capability")
        creds = parse_secrets(secrets)
        ref = self._owned_ref(volume_id)
        if ref is None:
            raise errors.VolumeNotFound("no such volume (not an id this driver issued)")
        wanted = rng.required_bytes or rng.limit_bytes
        self._check_capacity(wanted)
        with self.inflight.hold(f"vol:{ref.uri}"), self._client(ref.cluster_uri, creds) as client:
            if self._read_record(client, ref) is None or not client.exists(ref.path):
                raise errors.VolumeNotFound(f"volume {ref.uri} does not exist")
            current = self._current_capacity(client, ref) or 0
            if rng.limit_bytes and current > rng.limit_bytes:
                raise OutOfRange(f"volume is already {current} bytes, above limit_bytes; "
                                 "volumes cannot shrink")
            if wanted <= current:
                return current
            client.set_quota(ref.path, None, wanted * self.replication)
            log.info("expanded volume %s from %d to %d bytes", ref.uri, current, wanted)
            return wanted

    # -- ValidateVolumeCapabilities --------------------------------------------------------------
    def validate_capabilities(self, volume_id: str, context: Mapping[str, str],
                              caps: list[Capability], parameters: Mapping[str, str],
                              secrets: Mapping[str, str]) -> tuple[bool, str]:
        """(confirmed, message).  Unsupported capabilities are an answer, not an error."""
        check_volume_id(volume_id)
        ctx = parse_volume_context(context)
        if parameters:
            parse_create_parameters(parameters)
        creds = parse_secrets(secrets)
        for i, c in enumerate(caps):
            if c is None or c.access_type == "" or c.mode == 0:
                raise InvalidArgument(f"volume_capabilities[{i}]: access_type and access_mode "
                                      "are required")
        if not caps:
            raise InvalidArgument("volume_capabilities is required")
        ref = self._owned_ref(volume_id)
        read_only = ctx.mount.read_only
        if ref is not None:
            check_context_matches(ref, ctx)
            with self._client(ref.cluster_uri, creds) as client:
                if self._read_record(client, ref) is None or not client.exists(ref.path):
                    raise errors.VolumeNotFound(f"volume {ref.uri} does not exist")
        else:
            if ctx.path is None:
                raise errors.VolumeNotFound("no such volume: the id is not a dynamic volume and "
                                            f"volume_context has no {PATH}")
            cluster = self._cluster(ctx.hdfs_uri)
            with self._client(cluster, creds) as client:
                status = client.get_status(static_hdfs_path(ctx))
            if not status.is_dir:
                raise errors.VolumeNotFound(f"{ctx.path} is not a directory")
            read_only = read_only or ctx.snapshot is not None or ".snapshot" in ctx.path.split("/")
        try:
            check_capabilities(caps)
        except InvalidArgument as exc:
            return False, str(exc)
        if read_only and any(not c.reader_only for c in caps):
            return False, "this volume is read-only: only reader-only access modes are supported"
        return True, ""

    # -- GetCapacity ----------------------------------------------------------------------------
    def get_capacity(self, caps: list[Capability], parameters: Mapping[str, str]) -> int:
        params = parse_create_parameters(parameters)
        for c in caps:
            if c.access_type == "block":
                return 0  # no capacity at all for volumes we cannot provision
        if caps:
            check_capabilities(caps)
        cluster = self._cluster(params.hdfs_uri)
        stats = self.pool.get(cluster).fs_stats()
        available = max(stats.remaining, 0) // self.replication
        if self.config.max_capacity:
            available = min(available, self.config.max_capacity)
        return available
