"""Volume ids: what they contain, how they are written, how they are checked.

A dynamic volume's id is ``v1:`` followed by the HDFS URI of its directory::

    v1:hdfs://namenode:8020/k8s/volumes/pvc-0b6f1c52-4e0b-4a8e-9d7c-8f0e5c1e2a3b

That is everything a node needs to mount it (cluster and path), it is
readable in ``kubectl get pv``, and for Kubernetes names it stays within the
128-byte size CSI recommends.  Mount options travel in ``volume_context``;
the delete policy is stored next to the volume in HDFS (see
:mod:`csi_driver.provisioner`), never trusted from the id.

Static volumes (PVs an administrator writes) have ids the administrator
chose; they are opaque to us and only used as keys.  :func:`decode_volume_id`
therefore returns ``None`` for any id without our prefix: such an id names no
dynamic volume (NOT_FOUND, or OK for DeleteVolume), while an id *with* our
prefix that does not parse, or whose path is unsafe, is INVALID_ARGUMENT.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from csi_driver.errors import InvalidArgument
from csi_driver.params import HDFS_URI, PATH, VolumeContext
from csi_driver.paths import check_hdfs_path, is_volume_dirname
from hdfs_client.uri import parse_hdfs_uri

PREFIX = "v1:"
#: Hard limit for any volume id we accept (CSI recommends 128 bytes for ids we
#: generate; administrators' static volume handles get more room).
MAX_VOLUME_ID_BYTES = 1024


@dataclass(frozen=True)
class VolumeRef:
    """A dynamic volume: its cluster and its directory."""

    cluster_uri: str   #: "hdfs://authority"
    path: str          #: normalised absolute HDFS path of the volume directory

    @property
    def base_path(self) -> str:
        return posixpath.dirname(self.path)

    @property
    def dirname(self) -> str:
        return posixpath.basename(self.path)

    @property
    def uri(self) -> str:
        return f"{self.cluster_uri}{self.path}"


def check_volume_id(volume_id: str) -> str:
    if not volume_id:
        raise InvalidArgument("volume_id is required")
    if len(volume_id.encode("utf-8", "surrogatepass")) > MAX_VOLUME_ID_BYTES:
        raise InvalidArgument(f"volume_id is longer than {MAX_VOLUME_ID_BYTES} bytes")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in volume_id):
        raise InvalidArgument("volume_id contains control characters")
    return volume_id


def encode_volume_id(ref: VolumeRef) -> str:
    return PREFIX + ref.uri


def decode_volume_id(volume_id: str) -> VolumeRef | None:
    """The dynamic volume an id names, ``None`` for ids that are not ours."""
    check_volume_id(volume_id)
    if not volume_id.startswith(PREFIX):
        return None
    rest = volume_id[len(PREFIX):]
    try:
        loc = parse_hdfs_uri(rest)
    except ValueError as exc:
        raise InvalidArgument(f"malformed volume_id: {exc}") from None
    path = check_hdfs_path("volume_id path", loc.path)
    if posixpath.dirname(path) == "/":
        raise InvalidArgument("malformed volume_id: a volume directory is never directly under /")
    if not is_volume_dirname(posixpath.basename(path)):
        raise InvalidArgument("malformed volume_id: not a volume directory name")
    ref = VolumeRef(loc.cluster_uri, path)
    if encode_volume_id(ref) != volume_id:
        # Only the canonical spelling is an id we could have issued.
        raise InvalidArgument("malformed volume_id: not in canonical form")
    return ref


# -- what a volume's id and its context say together (controller and node both ask) --

def static_hdfs_path(ctx: VolumeContext) -> str:
    """The HDFS directory a static volume serves: its path, or the snapshot of it it pins."""
    assert ctx.path is not None
    if ctx.snapshot:
        return posixpath.join(ctx.path, ".snapshot", ctx.snapshot)
    return ctx.path


def check_context_matches(ref: VolumeRef, ctx: VolumeContext) -> None:
    """A dynamic volume's context may repeat its cluster and path, but must agree."""
    if ctx.hdfs_uri is not None and ctx.hdfs_uri != ref.cluster_uri:
        raise InvalidArgument(f"volume_context {HDFS_URI} does not match the volume id")
    if ctx.path is not None and ctx.path != ref.path:
        raise InvalidArgument(f"volume_context {PATH} does not match the volume id")
    if ctx.snapshot is not None:
        raise InvalidArgument("snapshot is an attribute of static volumes only")
