"""Every StorageClass parameter, volume attribute and secret key, and their parsers.

All key names the driver understands live here as constants, so manifests,
docs and code cannot drift apart.  Parsing is strict: an unknown key or a
malformed value is INVALID_ARGUMENT, because a typo in a StorageClass
(``cachesize`` for ``cacheSize``) silently ignored is a production incident
waiting to happen.  Keys under ``csi.storage.k8s.io/`` and
``storage.kubernetes.io/`` are added by the external-provisioner and kubelet
themselves (the provisioner writes ``storage.kubernetes.io/csiProvisionerIdentity``
into every PV it creates); they are accepted and ignored.

Secret values are never put into exception messages.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from csi_driver.errors import InvalidArgument
from csi_driver.paths import check_component, check_hdfs_path
from fuse_mount import options as mount_options
from hdfs_client.uri import parse_hdfs_uri

# -- StorageClass parameters (dynamic volumes) ------------------------------------
HDFS_URI = "hdfsUri"          #: cluster, e.g. hdfs://namenode:8020 (default: --hdfs-uri)
BASE_PATH = "basePath"        #: parent directory of the volume directories (default: --base-path)
OWNER = "owner"               #: HDFS owner of a new volume directory
GROUP = "group"               #: HDFS group of a new volume directory
MODE = "mode"                 #: octal permission of a new volume directory, e.g. "0775"
ON_DELETE = "onDelete"        #: delete | retain | archive

# -- mount options (StorageClass parameters and static PV attributes) -------------
# Owned by fuse_mount.options (names, parsers, limits, canonical form); the
# CSI layer accepts them beside its own keys and hands their values there.
READ_ONLY, CACHE_SIZE, READ_AHEAD_MAX, METADATA_TTL, WARMUP = (
    mount_options.READ_ONLY, mount_options.CACHE_SIZE, mount_options.READ_AHEAD_MAX,
    mount_options.METADATA_TTL, mount_options.WARMUP)

# -- static PV volumeAttributes -----------------------------------------------------
PATH = "path"                 #: existing HDFS directory, e.g. /datasets/imagenet
SNAPSHOT = "snapshot"         #: optional HDFS snapshot name (pins a read-only view)

# -- node-stage / node-publish (and controller) secrets ------------------------------
SECRET_USER = "user"                      #: simple-auth HDFS user
SECRET_KERBEROS_PRINCIPAL = "kerberosPrincipal"
SECRET_KERBEROS_KEYTAB = "kerberosKeytab"  #: base64 of the keytab file

#: Prefixes of keys Kubernetes and its sidecars add; accepted and ignored.
IGNORED_PREFIXES = ("csi.storage.k8s.io/", "storage.kubernetes.io/")
#: Set by kubelet ("true") in the NodePublishVolume context of an inline
#: (CSI ephemeral) volume, which kubelet never stages.
EPHEMERAL = "csi.storage.k8s.io/ephemeral"

MOUNT_OPTION_KEYS = tuple(mount_options.VOLUME_ATTRIBUTES)
STORAGE_CLASS_KEYS = (HDFS_URI, BASE_PATH, OWNER, GROUP, MODE, ON_DELETE) + MOUNT_OPTION_KEYS
VOLUME_CONTEXT_KEYS = (HDFS_URI, PATH, SNAPSHOT) + MOUNT_OPTION_KEYS
SECRET_KEYS = (SECRET_USER, SECRET_KERBEROS_PRINCIPAL, SECRET_KERBEROS_KEYTAB)

ON_DELETE_POLICIES = ("delete", "retain", "archive")

MAX_MAP_BYTES = 4096          #: CSI size limit for map<string,string> fields
MAX_VALUE_BYTES = 1024
MAX_KEYTAB_BYTES = 64 * 1024  #: real keytabs are a few hundred bytes to a few KiB

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]{0,254}$")  # HDFS user/group names
#: A Kerberos principal as Hadoop uses them: primary[/instance][@REALM].  Each
#: part starts with a letter, digit or '_' (``_HOST`` is Hadoop's placeholder),
#: so no part can be read as an option or a relative path; the realm starts
#: with a letter or digit.
_KRB_PART = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}"
_PRINCIPAL_RE = re.compile(rf"^{_KRB_PART}(/{_KRB_PART})?(@[A-Za-z0-9][A-Za-z0-9._-]{{0,254}})?$")
_MODE_RE = re.compile(r"^0?[0-7]{3,4}$")


@dataclass(frozen=True)
class MountOptions:
    """The mount options a volume's attributes gave, as :mod:`fuse_mount.options` parsed
    and checked them (field name -> value, only those given; canonical values, never raw
    text)."""

    given: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, values: Mapping[str, str]) -> MountOptions:
        try:
            parsed = mount_options.parse_volume_attributes(values)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        return cls(tuple(sorted(parsed.items())))

    def get(self, name: str) -> Any:
        """The value of field ``name`` (``cache_size``...), None when not given."""
        return dict(self.given).get(name)

    @property
    def read_only(self) -> bool:
        return bool(self.get("read_only"))

    def to_context(self) -> dict[str, str]:
        return mount_options.volume_attributes(dict(self.given))

    def to_mount_args(self) -> list[str]:
        """Flags of ``hdfs-csi mount`` for these options (read-only is the capability's
        business and travels separately)."""
        return mount_options.flags_for({k: v for k, v in self.given if k != "read_only"})


@dataclass(frozen=True)
class CreateParams:
    """Validated StorageClass parameters of a CreateVolume call."""

    hdfs_uri: str | None = None      #: cluster URI ("hdfs://authority"), None = driver default
    base_path: str | None = None     #: normalised HDFS path, None = driver default
    owner: str | None = None
    group: str | None = None
    mode: int | None = None
    on_delete: str | None = None
    mount: MountOptions = field(default_factory=MountOptions)

    def canonical(self) -> dict[str, str]:
        """Stable form stored with the volume, compared by repeated CreateVolume calls."""
        out: dict[str, str] = {}
        if self.hdfs_uri is not None:
            out[HDFS_URI] = self.hdfs_uri
        if self.base_path is not None:
            out[BASE_PATH] = self.base_path
        if self.owner is not None:
            out[OWNER] = self.owner
        if self.group is not None:
            out[GROUP] = self.group
        if self.mode is not None:
            out[MODE] = format(self.mode, "04o")
        if self.on_delete is not None:
            out[ON_DELETE] = self.on_delete
        out.update(self.mount.to_context())
        return out


@dataclass(frozen=True)
class VolumeContext:
    """Validated volume_context (static PV attributes or what CreateVolume returned)."""

    hdfs_uri: str | None = None
    path: str | None = None
    snapshot: str | None = None
    mount: MountOptions = field(default_factory=MountOptions)


@dataclass(frozen=True)
class Credentials:
    """Who the mount (and the driver's HDFS calls for it) act as.

    ``keytab`` holds the decoded keytab bytes; it only ever goes to a 0600 file
    (see :mod:`csi_driver.credentials`).  ``repr`` hides it.
    """

    user: str | None = None
    principal: str | None = None
    keytab: bytes | None = field(default=None, repr=False)

    @property
    def kerberos(self) -> bool:
        return self.principal is not None

    def describe(self) -> str:
        """For logs: names the identity, never the key material."""
        if self.kerberos:
            return f"kerberos principal {self.principal}"
        return f"user {self.user}" if self.user else "the driver's default user"


# -- helpers -------------------------------------------------------------------------------

def _check_map(field_name: str, values: Mapping[str, str], *, secret: bool = False) -> None:
    total = 0
    for k, v in values.items():
        if "\x00" in k or "\x00" in v:
            raise InvalidArgument(f"{field_name}: keys and values must not contain NUL bytes")
        total += len(k.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
    limit = MAX_KEYTAB_BYTES * 2 if secret else MAX_MAP_BYTES
    if total > limit:
        raise InvalidArgument(f"{field_name}: larger than {limit} bytes")


def _known(field_name: str, values: Mapping[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in values.items():
        if key.startswith(IGNORED_PREFIXES):
            continue
        if key not in allowed:
            unknown.append(key)
            continue
        if len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
            raise InvalidArgument(f"{field_name}: value of {key!r} is longer than "
                                  f"{MAX_VALUE_BYTES} bytes")
        out[key] = value
    if unknown:
        shown = ", ".join(repr(k[:64]) for k in sorted(unknown)[:5])
        raise InvalidArgument(f"{field_name}: unknown key(s) {shown}; "
                              f"accepted: {', '.join(allowed)} "
                              f"(and any key under {' or '.join(IGNORED_PREFIXES)})")
    return out


def parse_cluster_uri(key: str, value: str) -> str:
    """``hdfs://authority`` (or viewfs); a path part is refused, use basePath/path."""
    try:
        loc = parse_hdfs_uri(value)
    except ValueError as exc:
        raise InvalidArgument(f"{key}: {exc}") from None
    if loc.path != "/":
        raise InvalidArgument(f"{key} must name only the cluster (e.g. hdfs://namenode:8020); "
                              "put the directory in basePath or path")
    return loc.cluster_uri


def _parse_name(key: str, value: str) -> str:
    if not _NAME_RE.match(value):
        raise InvalidArgument(f"{key} must be a user or group name ([A-Za-z0-9._@-], "
                              "not starting with '.', '@' or '-')")
    return value


# -- public parsers --------------------------------------------------------------------------

def parse_create_parameters(values: Mapping[str, str]) -> CreateParams:
    _check_map("parameters", values)
    known = _known("parameters", values, STORAGE_CLASS_KEYS)
    mode: int | None = None
    if MODE in known:
        if not _MODE_RE.match(known[MODE]):
            raise InvalidArgument(f"{MODE} must be an octal permission such as 0755")
        mode = int(known[MODE], 8)
    on_delete = known.get(ON_DELETE)
    if on_delete is not None and on_delete not in ON_DELETE_POLICIES:
        raise InvalidArgument(f"{ON_DELETE} must be one of {', '.join(ON_DELETE_POLICIES)}")
    return CreateParams(
        hdfs_uri=parse_cluster_uri(HDFS_URI, known[HDFS_URI]) if HDFS_URI in known else None,
        base_path=check_hdfs_path(BASE_PATH, known[BASE_PATH]) if BASE_PATH in known else None,
        owner=_parse_name(OWNER, known[OWNER]) if OWNER in known else None,
        group=_parse_name(GROUP, known[GROUP]) if GROUP in known else None,
        mode=mode,
        on_delete=on_delete,
        mount=MountOptions.parse(known),
    )


def parse_volume_context(values: Mapping[str, str]) -> VolumeContext:
    _check_map("volume_context", values)
    known = _known("volume_context", values, VOLUME_CONTEXT_KEYS)
    snapshot = check_component(SNAPSHOT, known[SNAPSHOT]) if SNAPSHOT in known else None
    if snapshot == ".snapshot":   # HDFS reserves it; <path>/.snapshot/.snapshot names nothing
        raise InvalidArgument(f"{SNAPSHOT} must not be the reserved name .snapshot")
    path = check_hdfs_path(PATH, known[PATH], allow_root=True) if PATH in known else None
    if snapshot is not None and path is None:
        raise InvalidArgument(f"{SNAPSHOT} needs {PATH}: name the snapshottable directory")
    if path is not None and snapshot is not None and ".snapshot" in path.split("/"):
        raise InvalidArgument(f"give either a .snapshot path or the {SNAPSHOT} attribute, not both")
    return VolumeContext(
        hdfs_uri=parse_cluster_uri(HDFS_URI, known[HDFS_URI]) if HDFS_URI in known else None,
        path=path,
        snapshot=snapshot,
        mount=MountOptions.parse(known),
    )


def parse_secrets(values: Mapping[str, str], field_name: str = "secrets") -> Credentials | None:
    """Credentials from a secrets map; ``None`` when it names no identity.

    Messages name keys only, never values.
    """
    _check_map(field_name, values, secret=True)
    known = _known(field_name, values, SECRET_KEYS)
    user = known.get(SECRET_USER)
    principal = known.get(SECRET_KERBEROS_PRINCIPAL)
    keytab_b64 = known.get(SECRET_KERBEROS_KEYTAB)
    if (principal is None) != (keytab_b64 is None):
        raise InvalidArgument(f"{field_name}: {SECRET_KERBEROS_PRINCIPAL} and "
                              f"{SECRET_KERBEROS_KEYTAB} must be given together")
    if principal is not None and user is not None:
        raise InvalidArgument(f"{field_name}: give either {SECRET_USER} (simple auth) or "
                              "Kerberos credentials, not both")
    if user is not None:
        return Credentials(user=_parse_name(SECRET_USER, user))
    if principal is not None and keytab_b64 is not None:
        if not _PRINCIPAL_RE.match(principal):
            raise InvalidArgument(f"{field_name}: {SECRET_KERBEROS_PRINCIPAL} is not a Kerberos "
                                  "principal (primary[/instance][@REALM])")
        try:
            keytab = base64.b64decode("".join(keytab_b64.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(f"{field_name}: {SECRET_KERBEROS_KEYTAB} "
                                  "is not valid base64") from None
        if not keytab:
            raise InvalidArgument(f"{field_name}: {SECRET_KERBEROS_KEYTAB} is empty")
        if len(keytab) > MAX_KEYTAB_BYTES:
            raise InvalidArgument(f"{field_name}: {SECRET_KERBEROS_KEYTAB} is larger than "
                                  f"{MAX_KEYTAB_BYTES} bytes")
        return Credentials(principal=principal, keytab=keytab)
    return None
