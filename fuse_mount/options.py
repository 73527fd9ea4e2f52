"""Mount options: one dataclass, one place for every default and its reason.

The same :class:`MountOptions` is built three ways: from ``hdfs-csi mount``
flags (:mod:`fuse_mount.cli` generates the flags and their ``--help`` from the
field metadata below), from CSI volume attributes (:meth:`from_mapping`,
camelCase keys, strict), and programmatically.  :meth:`to_args` turns it back
into flags, which is how the CSI node service starts a mount process.

This module is the one owner of the volume-attribute keys that set mount
options (``readOnly``, ``cacheSize``, ``readAheadMax``, ``metadataTtl``): their
names, parsers, upper bounds and canonical string form.  The CSI layer
(:mod:`csi_driver.params`) accepts exactly these keys beside its own and
hands their values here (:func:`parse_volume_attributes`), so a StorageClass
is checked by the same rules a mount applies.  Options a PV author must not
choose (the node's cache directory, memory bounds, identity) have no key.

Source URI and mountpoint are deliberately *not* options: they are the two
positional arguments, and a volume attribute must never be able to change them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fuse_mount import cgroups
from hdfs_csi_common.units import format_size, parse_duration, parse_size

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

#: The volume attributes (StorageClass parameters, PV volumeAttributes) that set a mount option.
READ_ONLY = "readOnly"          #: "true" mounts the filesystem read-only
CACHE_SIZE = "cacheSize"        #: local data cache bound, e.g. "10Gi"
READ_AHEAD_MAX = "readAheadMax"  #: largest read-ahead window, e.g. "64Mi"
METADATA_TTL = "metadataTtl"    #: attribute/listing cache lifetime, e.g. "30s"
WARMUP = "warmup"               #: read these paths/globs into the disk cache once mounted
PREFETCH_MAX_SIZE = "prefetchMaxSize"  #: prefetch small files up to this size ("0" = off)
CACHE_POOL = "cachePool"        #: keep the dataset in this HDFS cache pool while mounted
CACHE_POOL_TTL = "cachePoolTtl"  #: lifetime of those cache directives, renewed while mounted
CACHE_POOL_REPLICATION = "cachePoolReplication"  #: cached copies of each block
DIRECT_IO = "directIo"          #: "true"/"false": cold large reads skip the page cache
MAX_WARMUP_PATTERNS = 64


def _opt(default: Any, help: str, *, kind: str = "str", csi: str | None = None,
         flag: str | None = None, limit: float | None = None) -> Any:
    """A field; ``csi`` names its volume attribute, ``limit`` the most that attribute may ask."""
    return field(default=default, metadata={"help": help, "kind": kind, "csi": csi, "flag": flag,
                                            "limit": limit})


@dataclass(frozen=True)
class MountOptions:
    read_only: bool = _opt(
        False, "Mount read-only: every change fails with EROFS in the kernel and in the "
        "filesystem. Datasets are usually read-only; say so and nothing can damage them.",
        kind="bool", csi=READ_ONLY)
    cache_dir: str | None = _opt(
        None, "Directory for the local data cache (enables it). Second epochs then read "
        "local disk instead of the network. Off by default: the node's disk is not ours "
        "to fill unless an operator says where.", kind="path")
    cache_size: int = _opt(
        10 * GiB, "Byte bound of the data cache; least recently used chunks are evicted "
        "beyond it. 10 GiB holds a typical per-node shard set and fits most node disks.",
        kind="size", csi=CACHE_SIZE, limit=16 * TiB)
    read_ahead_max: int = _opt(
        32 * MiB, "Largest read-ahead window per open file. The window starts at 128 KiB "
        "and doubles while reads stay sequential; 32 MiB keeps 8 range reads of 4 MiB in "
        "flight, enough to hide per-stream limits of a remote DataNode (more only costs "
        "memory: 64 MiB measured no faster).",
        kind="size", csi=READ_AHEAD_MAX, limit=1 * GiB)
    read_ahead_memory: int = _opt(
        256 * MiB, "Memory bound for read-ahead of the whole mount; beyond it reads go "
        "synchronous instead of growing the process. A part counts twice (client buffer + "
        "copy), so 256 MiB = four files streaming with full 32 MiB windows.",
        kind="size")
    read_ahead_streams: int = _opt(
        8, "Range reads in flight per sequential file. One HDFS stream is limited by one "
        "DataNode connection; eight in parallel fill a fast network without overloading "
        "DataNodes.", kind="int")
    metadata_ttl: float = _opt(
        10.0, "Seconds that attributes, directory listings and 'does not exist' answers are "
        "trusted (also the kernel's attr/entry timeouts). A file changed in HDFS is seen "
        "at most this late; 10 s makes 'ls -l' of huge directories one listing, not one "
        "RPC per entry.", kind="duration", csi=METADATA_TTL, limit=86400.0)
    io_timeout: float = _opt(
        30.0, "Bound on any single HDFS call (metadata RPC, range read, write). A hung "
        "NameNode or DataNode becomes EIO after this long instead of a read that hangs "
        "forever; 30 s is far above a healthy call and below kubelet's 2 min timeouts.",
        kind="duration")
    kernel_read_ahead: int = _opt(
        8 * MiB, "Kernel read-ahead of the mount (bdi read_ahead_kb; needs root). The "
        "default 128 KiB turns every sequential read into 128 KiB FUSE requests; a few "
        "MiB lets the kernel send 1 MiB requests, several at a time.", kind="size")
    direct_io: bool | None = _opt(
        None, "Read large files (16 MiB and more) that are not yet complete in the disk "
        "cache with FUSE direct I/O: no kernel page cache copy, the application's request "
        "sizes reach the mount (cold sequential reads 1.3-1.7x faster). Files complete in "
        "the disk cache keep the page cache. Default: auto = on only when the FUSE "
        "connection lets such files be mmap-ed MAP_SHARED (the own loop; libfuse 3.14 "
        "gives ENODEV) and the mount's dataset is larger than half of the available "
        "memory, so a later epoch could not come from the page cache anyway; small reads "
        "(8 KiB) each become a round trip.", kind="bool3", csi=DIRECT_IO)
    splice: bool = _opt(
        True, "With --cache-dir and --fuse-loop libfuse: send replies through a pipe by "
        "vmsplice (pages by reference, no copy into a reply buffer: reads the disk cache "
        "holds once their checksums are checked, others from read-ahead) that libfuse splices into "
        "/dev/fuse. FUSE requests are then at most 1008 KiB unless pipes over 1 MiB are "
        "allowed (CAP_SYS_RESOURCE). --no-splice copies through a buffer (for "
        "comparison, or a kernel that misbehaves).", kind="bool")
    fuse_threads: int = _opt(
        16, "FUSE worker threads, started as needed and kept for the life of the mount. "
        "Each holds a 1 MiB request buffer; 16 serve many concurrent readers while "
        "keeping that memory small.", kind="int")
    fuse_loop: str = _opt(
        "auto", "Who serves /dev/fuse: 'own' = this project's request loop under a keeper "
        "process that holds the FUSE connection, so that a crashed, killed or upgraded "
        "daemon is replaced without the mount ever going away (needs root: it calls "
        "mount(2) itself); 'libfuse' = libfuse's loop through mfusepy (a daemon crash "
        "leaves ENOTCONN); 'auto' = own when root.", kind="str")
    takeover_dir: str | None = _opt(
        None, "With the own loop: where the keeper keeps what a replacement daemon needs "
        "(negotiated connection, node ids, open handles). Default: a private directory "
        "under /run/hdfs-csi, removed at unmount.", kind="path")
    cgroup: str | None = _opt(
        None, "With the own loop: move the keeper, and so every daemon it starts, into "
        "this cgroup (a relative path) below the root of each hierarchy before mounting, so the "
        "mount outlives the container that started it (a node plugin pod deleted or "
        "upgraded: its runtime kills every process of its cgroup). Its memory is then "
        "charged there, not to that container.", kind="str")
    io_threads: int = _opt(
        32, "Threads doing HDFS calls (read-ahead, reads, metadata) for the mount. "
        "HDFS calls release the GIL, so threads give real parallelism.", kind="int")
    warmup: tuple[str, ...] = _opt(
        (), "Paths or globs inside the mount, comma-separated ('.' = all of it; '**' crosses "
        "directories), read into the disk cache in the background once mounted, up to "
        "--cache-size, so that a first epoch finds them local. Needs --cache-dir.",
        kind="list", csi=WARMUP)
    prefetch_max_size: int = _opt(
        4 * MiB, "With --cache-dir: once a process opens a second file of a directory, read "
        "the directory's other files up to this size into the disk cache ahead of it, "
        "several at a time (an ImageFolder / per-sample-file epoch, shuffled order included), "
        "so that their opens find them local. Stops while the prefetched files are not "
        "being opened, and for good when the cache is nine tenths full; never evicts. Larger files "
        "(shards) are left to read-ahead. 0 turns it off.",
        kind="size", csi=PREFETCH_MAX_SIZE, limit=64 * MiB)
    prefetch_streams: int = _opt(
        8, "Batches of small files prefetched at a time (up to 8 files of one directory, at "
        "most --prefetch-max-size bytes, whole in memory until they are in the disk cache). "
        "More streams hide more NameNode and DataNode round trips.", kind="int")
    cache_pool: str | None = _opt(
        None, "HDFS cache pool (Centralized Cache Management) in which to keep the mounted "
        "data in DataNode memory while mounted, for every node of the cluster: one cache "
        "directive per directory holding files (HDFS directives do not recurse; at most "
        "1024), renewed every third of --cache-pool-ttl, removed at unmount. The pool is "
        "made by an HDFS administrator ('hdfs cacheadmin -addPool'); the mount's user needs "
        "WRITE on it. A refusal is logged, never fatal.", kind="str", csi=CACHE_POOL)
    cache_pool_ttl: float = _opt(
        3600.0, "Lifetime of the --cache-pool directives. They are renewed while the mount "
        "lives, so this only bounds how long a node that died without unmounting keeps "
        "DataNode memory pinned: one hour.", kind="duration", csi=CACHE_POOL_TTL,
        limit=7 * 86400.0)
    cache_pool_replication: int | None = _opt(
        None, "Cached copies of each block for the --cache-pool directives (default: the "
        "pool's default replication, usually 1). Neither the NameNode nor the HDFS clients "
        "prefer a cached replica when they pick one to read, so with 1 cached copy of 3 a "
        "read hits memory about one time in three: set the files' replication for every "
        "read to.", kind="int", csi=CACHE_POOL_REPLICATION, limit=16)
    user: str | None = _opt(
        None, "HDFS user name for simple authentication (default: HADOOP_USER_NAME or the "
        "local user).", kind="str")
    kerberos_principal: str | None = _opt(
        None, "Kerberos principal; needs --kerberos-keytab.", kind="str")
    kerberos_keytab: str | None = _opt(
        None, "Keytab file for --kerberos-principal.", kind="path")
    allow_other: bool | None = _opt(
        None, "Let users other than the mounting one use the mount (FUSE allow_other). "
        "Default: on when mounting as root, since pods run as other users.", kind="bool3")
    metrics_port: int | None = _opt(
        None, "Serve Prometheus metrics of this mount on this TCP port (0 = any free one). "
        "Off by default: one port per mount must be planned by the operator.", kind="int")
    pid_file: str | None = _opt(None, "Write the mount process id here.", kind="path")
    log_file: str | None = _opt(
        None, "Log file of the background mount process (default: discard after start-up; "
        "in --foreground logs go to stderr).", kind="path")
    log_level: str = _opt("INFO", "Log level (DEBUG, INFO, WARNING, ERROR).", kind="str")
    foreground: bool = _opt(
        False, "Stay in the foreground (logs to stderr) instead of daemonizing.", kind="bool")

    # -- validation ------------------------------------------------------------
    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

        for name in ("cache_size", "read_ahead_memory", "read_ahead_streams", "io_timeout",
                     "fuse_threads", "io_threads", "prefetch_streams"):
            positive(name)
        if self.read_ahead_max < 128 * KiB:
            raise ValueError(f"read_ahead_max must be at least 128 KiB, got {self.read_ahead_max}")
        if self.metadata_ttl < 0:
            raise ValueError("metadata_ttl must not be negative")
        if self.cache_pool is not None and (
                not self.cache_pool or len(self.cache_pool) > 256 or any(
                    ord(ch) < 0x21 or ord(ch) == 0x7F for ch in self.cache_pool)):
            raise ValueError(f"cache_pool: {self.cache_pool[:64]!r} is not a cache pool name "
                             "(1 to 256 printable characters, no spaces)")
        if self.cache_pool_replication is not None and self.cache_pool_replication < 1:
            raise ValueError("cache_pool_replication must be at least 1")
        if not self.cache_pool_ttl >= 60:
            raise ValueError(f"cache_pool_ttl must be at least 60 s, got {self.cache_pool_ttl!r}")
        if self.prefetch_max_size < 0:
            raise ValueError("prefetch_max_size must not be negative")
        if self.kernel_read_ahead < 0:
            raise ValueError("kernel_read_ahead must not be negative")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port out of range: {self.metrics_port}")
        if self.cache_dir is not None:
            if not os.path.isabs(self.cache_dir) or ".." in self.cache_dir.split("/"):
                raise ValueError("cache_dir must be an absolute path without '..': "
                                 f"{self.cache_dir!r}")
        if len(self.warmup) > MAX_WARMUP_PATTERNS:
            raise ValueError(f"warmup names more than {MAX_WARMUP_PATTERNS} paths")
        for p in self.warmup:
            if not p or p.startswith(("/", "-")) or ".." in p.split("/") or any(
                    ord(ch) < 0x20 or ord(ch) == 0x7F for ch in p):
                raise ValueError(f"warmup: {p[:64]!r} must be a path inside the mount "
                                 "(relative, without '..', not starting with '-')")
        if (self.kerberos_principal is None) != (self.kerberos_keytab is None):
            raise ValueError("kerberos_principal and kerberos_keytab go together")
        if self.cgroup is not None:
            cgroups.check_name(self.cgroup)
        if self.fuse_loop not in ("auto", "own", "libfuse"):
            raise ValueError(f"fuse_loop must be auto, own or libfuse, got {self.fuse_loop!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"unknown log level {self.log_level!r}")

    # -- CSI volume attributes -------------------------------------------------
    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str], **overrides: Any) -> MountOptions:
        """Build from volume attributes (``readOnly``, ``cacheSize``, ``readAheadMax``,
        ``metadataTtl``); strings as Kubernetes sends them.  Unknown keys raise
        ``ValueError``: a typo must not silently mount with defaults.  ``overrides``
        set fields no attribute can (cache directory, user, pid file...).
        """
        unknown = sorted(set(mapping) - set(VOLUME_ATTRIBUTES))
        if unknown:
            raise ValueError(f"unknown mount option(s) {unknown}; "
                             f"known: {sorted(VOLUME_ATTRIBUTES)}")
        return cls(**{**parse_volume_attributes(mapping), **overrides})

    # -- command line ----------------------------------------------------------
    def to_args(self) -> list[str]:
        """Flags for ``hdfs-csi mount`` that reproduce these options (defaults left out)."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if getattr(self, f.name) != f.default}
        return flags_for(given)

    def describe(self) -> str:
        """One log line; the keytab path is shown, never its contents."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["kind"] == "size":
                value = format_size(value)
            parts.append(f"{f.name}={value}")
        return " ".join(parts)


_FIELDS = {f.name: f for f in dataclasses.fields(MountOptions)}
#: volume attribute -> the field it sets
VOLUME_ATTRIBUTES = {f.metadata["csi"]: f for f in _FIELDS.values() if f.metadata["csi"]}


def parse_volume_attributes(values: Mapping[str, str]) -> dict[str, Any]:
    """The mount options that volume attributes set: field name -> value, for the keys given.

    Other keys are left to the caller (the CSI layer has keys of its own).  A
    value that does not parse, exceeds its attribute's limit or fails the checks
    a mount applies raises ``ValueError`` naming the key, so a StorageClass is
    refused at CreateVolume rather than at the first mount.
    """
    out: dict[str, Any] = {}
    for key, raw in values.items():
        f = VOLUME_ATTRIBUTES.get(key)
        if f is None:
            continue
        try:
            value = parse_value(f.metadata["kind"], raw)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
        limit = f.metadata["limit"]
        if limit is not None and value > limit:
            shown = format_size(int(limit)) if f.metadata["kind"] == "size" else f"{limit:g} s"
            raise ValueError(f"{key} must not exceed {shown}")
        out[f.name] = value
    if out.get("warmup") and "cache_size" not in out:
        raise ValueError(f"{WARMUP} needs {CACHE_SIZE}: without a disk cache there is "
                         "nothing to warm")
    try:
        MountOptions(**out)
    except ValueError as exc:
        names = ", ".join(f.metadata["csi"] for name, f in _FIELDS.items() if name in out)
        raise ValueError(f"{names}: {exc}") from None
    return out


def volume_attributes(given: Mapping[str, Any]) -> dict[str, str]:
    """The canonical strings of parsed options (stored with a volume, compared by a repeated
    CreateVolume, returned in its volume context); a false ``readOnly`` is left out."""
    out: dict[str, str] = {}
    for name, value in given.items():
        f = _FIELDS[name]
        kind = f.metadata["kind"]
        if kind == "bool":
            if value:
                out[f.metadata["csi"]] = "true"
        elif kind == "bool3":   # given at all: an explicit choice, kept either way
            out[f.metadata["csi"]] = "true" if value else "false"
        else:
            out[f.metadata["csi"]] = _format(kind, value)
    return out


def flags_for(given: Mapping[str, Any]) -> list[str]:
    """``hdfs-csi mount`` flags that set exactly these fields (field name -> value)."""
    args: list[str] = []
    for name, value in given.items():
        f = _FIELDS[name]
        flag = flag_name(f)
        kind = f.metadata["kind"]
        if kind in ("bool", "bool3"):  # the CLI has --no-X for every one not off by default
            if value:
                args.append(flag)
            elif f.default is not False:
                args.append(f"--no-{flag[2:]}")
        else:
            args += [flag, _format(kind, value)]
    return args


def _format(kind: str, value: Any) -> str:
    if kind == "list":
        return ",".join(value)
    if kind == "size":
        return str(int(value))
    if kind == "duration":   # exact: "{:g}" would round 12345.678 s to 12345.7
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def flag_name(f: dataclasses.Field) -> str:  # type: ignore[type-arg]
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def parse_bool(raw: str | bool) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def parse_value(kind: str, raw: Any) -> Any:
    """Parse a string from a volume attribute or a flag into the field's type."""
    if kind in ("bool", "bool3"):
        return parse_bool(raw)
    if kind == "size":
        return parse_size(raw)
    if kind == "duration":
        return parse_duration(raw)
    if kind == "int":
        return int(str(raw).strip())
    if kind == "list":
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        out = tuple(p.strip() for p in items if str(p).strip())
        if not out:
            raise ValueError("names no path (use '.' for all of it)")
        return out
    if kind == "path":
        text = str(raw)
        return text or None  # not normalised: '..' must be seen (and refused), not resolved
    return str(raw)
