"""Glue shared by the three servicers: error-to-status and protobuf unpacking.

Servicer methods are wrapped by :func:`handler`, which turns any exception
into the gRPC status chosen by :mod:`csi_driver.errors` (the one table), so
no servicer ever picks a status code itself.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, TypeVar

import grpc

from csi_driver.capabilities import Capability
from csi_driver.errors import Unimplemented, to_status
from csi_driver.provisioner import CapacityRange

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def handler(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except Exception as exc:  # noqa: BLE001 - every error becomes a status
            code, message = to_status(exc)
            if code is grpc.StatusCode.INTERNAL:
                log.exception("%s failed", fn.__name__)
            context.abort(code, message)
    return wrapper  # type: ignore[return-value]


def unimplemented(message: str) -> Callable[..., Any]:
    """A servicer method that answers UNIMPLEMENTED with ``message``.

    The generated base class already answers UNIMPLEMENTED, but with a bare
    "Method not implemented!"; this says why.
    """
    def method(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        raise Unimplemented(message)
    return handler(method)


def capability(pb: Any) -> Capability:
    """A ``csi.v1.VolumeCapability`` as the core's :class:`Capability`."""
    access = pb.WhichOneof("access_type") or ""
    mount = pb.mount if access == "mount" else None
    return Capability(
        access_type=access,
        mode=int(pb.access_mode.mode),
        fs_type=mount.fs_type if mount is not None else "",
        mount_flags=tuple(mount.mount_flags) if mount is not None else (),
        mount_group=mount.volume_mount_group if mount is not None else "",
    )


def optional_capability(request: Any, field: str) -> Capability | None:
    return capability(getattr(request, field)) if request.HasField(field) else None


def capacity_range(request: Any) -> CapacityRange | None:
    if not request.HasField("capacity_range"):
        return None
    r = request.capacity_range
    return CapacityRange(required_bytes=int(r.required_bytes), limit_bytes=int(r.limit_bytes))
