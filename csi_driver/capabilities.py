"""Volume capabilities as the driver core sees them (no protobuf types here).

The gRPC layer copies a ``csi.v1.VolumeCapability`` into :class:`Capability`;
the core validates it with :func:`check_capability`.  Only filesystem
("mount") access exists for HDFS: block access is refused.  The numeric
access-mode values are those of the CSI specification.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from csi_driver.errors import InvalidArgument


class AccessMode(enum.IntEnum):
    UNKNOWN = 0
    SINGLE_NODE_WRITER = 1
    SINGLE_NODE_READER_ONLY = 2
    MULTI_NODE_READER_ONLY = 3
    MULTI_NODE_SINGLE_WRITER = 4
    MULTI_NODE_MULTI_WRITER = 5
    SINGLE_NODE_SINGLE_WRITER = 6
    SINGLE_NODE_MULTI_WRITER = 7


READER_ONLY_MODES = frozenset({AccessMode.SINGLE_NODE_READER_ONLY,
                               AccessMode.MULTI_NODE_READER_ONLY})
#: Modes for which a second NodePublish to a *different* target must fail.
#: SINGLE_NODE_WRITER is deliberately absent: Kubernetes sends it for RWO
#: volumes, and RWO lets several pods on one node share the volume.  Only
#: ReadWriteOncePod (SINGLE_NODE_SINGLE_WRITER) promises a single workload.
SINGLE_TARGET_MODES = frozenset({AccessMode.SINGLE_NODE_SINGLE_WRITER})

#: Filesystem types a CO may name; empty means "the driver's choice".
ACCEPTED_FS_TYPES = frozenset({"", "hdfs", "fuse", "fuse.hdfs-csi"})
#: Mount flags (PV ``mountOptions``) we accept.  Anything else could name
#: node files or options the FUSE daemon must not see, so it is refused.
#: ``ro`` makes the mount read-only; the others are what the FUSE mount does
#: anyway and are accepted so common PV templates work.
ACCEPTED_MOUNT_FLAGS = frozenset({"ro", "rw", "noatime", "nodiratime", "relatime",
                                  "nosuid", "nodev", "noexec"})
MAX_MOUNT_FLAGS_BYTES = 4096


@dataclass(frozen=True)
class Capability:
    access_type: str                  #: "mount", "block" or "" (unset)
    mode: int                         #: AccessMode value as sent
    fs_type: str = ""
    mount_flags: tuple[str, ...] = field(default_factory=tuple)
    mount_group: str = ""

    @property
    def access_mode(self) -> AccessMode:
        return AccessMode(self.mode)

    @property
    def reader_only(self) -> bool:
        return self.access_mode in READER_ONLY_MODES or "ro" in self.mount_flags

    def fingerprint(self) -> dict[str, object]:
        """What must match for a repeated stage/publish to count as the same call."""
        return {"mode": int(self.mode), "fs_type": self.fs_type,
                "mount_flags": sorted(set(self.mount_flags))}


def check_capability(cap: Capability | None, field_name: str = "volume_capability") -> Capability:
    """Reject what is missing or malformed (INVALID_ARGUMENT); return ``cap``.

    Block access, unknown access modes, unsupported filesystem types and mount
    flags outside the allow-list are all "invalid or unsupported field".
    """
    if cap is None:
        raise InvalidArgument(f"{field_name} is required")
    if cap.access_type == "":
        raise InvalidArgument(f"{field_name}: access_type (mount or block) is required")
    if cap.access_type == "block":
        raise InvalidArgument(f"{field_name}: block access is not supported; HDFS volumes are "
                              "filesystems (use access_type mount)")
    if cap.access_type != "mount":
        raise InvalidArgument(f"{field_name}: unknown access_type {cap.access_type!r}")
    try:
        mode = AccessMode(cap.mode)
    except ValueError:
        raise InvalidArgument(f"{field_name}: unknown access mode {cap.mode}") from None
    if mode is AccessMode.UNKNOWN:
        raise InvalidArgument(f"{field_name}: access_mode is required")
    if cap.fs_type not in ACCEPTED_FS_TYPES:
        named = sorted(t for t in ACCEPTED_FS_TYPES if t)
        raise InvalidArgument(f"{field_name}: fs_type {cap.fs_type[:32]!r} is not supported "
                              f"(use one of {named} or leave empty)")
    if sum(len(f.encode()) for f in cap.mount_flags) > MAX_MOUNT_FLAGS_BYTES:
        raise InvalidArgument(f"{field_name}: mount_flags exceed {MAX_MOUNT_FLAGS_BYTES} bytes")
    bad = [f for f in cap.mount_flags if f not in ACCEPTED_MOUNT_FLAGS]
    if bad:
        # Never echo the flags themselves: the spec says they may be sensitive.
        raise InvalidArgument(f"{field_name}: {len(bad)} unsupported mount flag(s); accepted: "
                              f"{', '.join(sorted(ACCEPTED_MOUNT_FLAGS))}")
    if "ro" in cap.mount_flags and "rw" in cap.mount_flags:
        raise InvalidArgument(f"{field_name}: mount flags 'ro' and 'rw' contradict each other")
    if cap.mount_group:
        raise InvalidArgument(f"{field_name}: volume_mount_group is not supported "
                              "(the driver does not advertise VOLUME_MOUNT_GROUP)")
    return cap


def check_capabilities(caps: list[Capability],
                       field_name: str = "volume_capabilities") -> list[Capability]:
    if not caps:
        raise InvalidArgument(f"{field_name} is required (at least one capability)")
    return [check_capability(c, f"{field_name}[{i}]") for i, c in enumerate(caps)]
