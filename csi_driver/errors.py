"""Driver errors and the one table that turns every error into a gRPC status.

The driver core raises the classes below (or lets :mod:`hdfs_client.errors`
propagate); only the gRPC layer calls :func:`to_status`.  Keeping the
mapping in one table means a reviewer can check every code against the CSI
specification's error tables in one place, and an error class can never be
reported with two different codes by two RPCs.
"""

from __future__ import annotations

import grpc

from hdfs_client import errors as hdfs_errors


class DriverError(Exception):
    """Base of the errors the driver core raises on purpose."""


class InvalidArgument(DriverError):
    """A field is missing, malformed, unsafe or not supported (CSI: fix the request)."""


class VolumeNotFound(DriverError):
    """The volume (or the volume at the given path) does not exist."""


class AlreadyExists(DriverError):
    """Same name / same target with incompatible parameters or capability."""


class FailedPrecondition(DriverError):
    """The request is valid but the volume is not in a state that allows it."""


class Aborted(DriverError):
    """Another operation on the same volume is in flight; the CO retries with backoff."""


class OutOfRange(DriverError):
    """The capacity range cannot be satisfied (too large, or a shrink)."""


class ResourceExhausted(DriverError):
    """The backend has no room for the request."""


class Unimplemented(DriverError):
    """The RPC is not served in this mode (e.g. node RPCs on a controller-only instance)."""


class MountFailed(DriverError):
    """Starting, binding or removing a mount failed on this node."""


class Unavailable(DriverError):
    """A dependency (HDFS, the mount helper) could not be reached; retrying may help."""


# Exception class -> gRPC code.  Looked up along the exception's MRO, so the
# most specific entry wins (HdfsTimeout before HdfsIOError before HdfsError).
STATUS_TABLE: dict[type[BaseException], grpc.StatusCode] = {
    # driver core
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    VolumeNotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Aborted: grpc.StatusCode.ABORTED,
    OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    MountFailed: grpc.StatusCode.INTERNAL,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    DriverError: grpc.StatusCode.INTERNAL,
    # HDFS seam
    hdfs_errors.NotFound: grpc.StatusCode.NOT_FOUND,
    hdfs_errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    hdfs_errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    hdfs_errors.NotEmpty: grpc.StatusCode.FAILED_PRECONDITION,
    hdfs_errors.NotADirectory: grpc.StatusCode.FAILED_PRECONDITION,
    hdfs_errors.IsADirectory: grpc.StatusCode.FAILED_PRECONDITION,
    hdfs_errors.QuotaExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    hdfs_errors.InvalidPath: grpc.StatusCode.INVALID_ARGUMENT,
    hdfs_errors.LeaseConflict: grpc.StatusCode.ABORTED,
    # An HDFS without the admin RPCs we need (quota, stats) is a deployment
    # problem, not an unimplemented CSI RPC: UNIMPLEMENTED would tell the CO
    # never to retry the RPC at all.
    hdfs_errors.Unsupported: grpc.StatusCode.FAILED_PRECONDITION,
    # An unknown cache pool or directive: the request names something that is not there.
    hdfs_errors.InvalidRequest: grpc.StatusCode.FAILED_PRECONDITION,
    hdfs_errors.HdfsTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
    hdfs_errors.HdfsIOError: grpc.StatusCode.UNAVAILABLE,
    hdfs_errors.HdfsError: grpc.StatusCode.INTERNAL,
}


def status_code(exc: BaseException) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        code = STATUS_TABLE.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The (code, message) an RPC answers for ``exc``; the message is never empty."""
    code = status_code(exc)
    message = str(exc) or type(exc).__name__
    domain_error = isinstance(exc, (DriverError, hdfs_errors.HdfsError))
    if code is grpc.StatusCode.INTERNAL and not domain_error:
        # A bug, not a domain error: say so, keep the type for the operator.
        message = f"internal error ({type(exc).__name__}): {message}"
    return code, message
