"""The domain errors every layer above the HDFS seam sees.

The FUSE layer turns these into errno values (the one table, in
``fuse_mount.errors``: the classes here carry no errno of their own) and the
CSI layer into gRPC status codes (one table, in ``csi_driver.errors``).
Keeping the set small is deliberate: each class must have a clear, distinct
errno and gRPC code.
"""

from __future__ import annotations


class HdfsError(Exception):
    """Base of every error raised through :class:`hdfs_client.HdfsClient`."""

    def __init__(self, message: str, path: str | None = None, remote_class: str | None = None):
        super().__init__(message)
        self.path = path
        self.remote_class = remote_class


class NotFound(HdfsError):
    """The path does not exist (FileNotFoundException)."""


class AlreadyExists(HdfsError):
    """The path exists already (FileAlreadyExistsException)."""


class PermissionDenied(HdfsError):
    """HDFS permissions, ACLs or a read-only snapshot refused the call."""


class NotEmpty(HdfsError):
    """A non-recursive delete of a directory that has children."""


class NotADirectory(HdfsError):
    """An ancestor of the path is a file (ParentNotDirectoryException)."""


class IsADirectory(HdfsError):
    """A file operation (open for read/write) was aimed at a directory."""


class QuotaExceeded(HdfsError):
    """Namespace (file count) or space quota of an ancestor directory is exhausted."""


class InvalidPath(HdfsError):
    """HDFS refused the path itself (InvalidPathException)."""


class LeaseConflict(HdfsError):
    """The file is open for writing by another client (AlreadyBeingCreated / lease)."""


class Unsupported(HdfsError):
    """The operation exists in POSIX but not in HDFS (e.g. random-offset writes)."""


class InvalidRequest(HdfsError):
    """The NameNode refused a request as invalid (InvalidRequestException): an
    unknown cache pool or directive, an expiry beyond the pool's limit."""


class HdfsIOError(HdfsError):
    """Transient or unexplained failure: network, DataNode, timeout, client panic.

    Callers may retry these; every other class is a definite answer.
    """


class HdfsTimeout(HdfsIOError):
    """The operation did not finish within the configured bound."""


# Java exception class name (as sent in RpcResponseHeaderProto) -> domain error.
# Both the hdfs-native wrapper (which only sees the class name inside the
# RuntimeError text) and our own small RPC client use this table.
REMOTE_EXCEPTIONS: dict[str, type[HdfsError]] = {
    "java.io.FileNotFoundException": NotFound,
    "org.apache.hadoop.fs.FileAlreadyExistsException": AlreadyExists,
    "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException": LeaseConflict,
    "org.apache.hadoop.security.AccessControlException": PermissionDenied,
    "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException": NotEmpty,
    "org.apache.hadoop.fs.ParentNotDirectoryException": NotADirectory,
    "org.apache.hadoop.fs.InvalidPathException": InvalidPath,
    "org.apache.hadoop.hdfs.protocol.NSQuotaExceededException": QuotaExceeded,
    "org.apache.hadoop.hdfs.protocol.DSQuotaExceededException": QuotaExceeded,
    "org.apache.hadoop.hdfs.protocol.QuotaExceededException": QuotaExceeded,
    "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException": LeaseConflict,
    "org.apache.hadoop.hdfs.protocol.SnapshotAccessControlException": PermissionDenied,
    "java.lang.UnsupportedOperationException": Unsupported,
    "org.apache.hadoop.ipc.RpcNoSuchMethodException": Unsupported,
    "org.apache.hadoop.fs.InvalidRequestException": InvalidRequest,
}


def from_remote(class_name: str, message: str, path: str | None = None) -> HdfsError:
    """Build the domain error for a Java exception class name sent by a NameNode.

    Hadoop's NameNode sends many exceptions with their Java stack trace in
    ``errorMsg``; only the first line is the message (the trace would otherwise
    travel into gRPC details, events and logs)."""
    cls = REMOTE_EXCEPTIONS.get(class_name, HdfsIOError)
    return cls(first_line(message) or class_name, path=path, remote_class=class_name)


def first_line(message: str | None) -> str:
    """The message part of a Java ``errorMsg``: its first line (the rest is the trace)."""
    return (message or "").strip().split("\n", 1)[0].strip()
