"""Server-side exceptions that travel to clients as Java exception class names.

Every failure a handler wants a client to see is one of these; the IPC layer
turns ``java_class`` + message into an RPC error response.  Clients key on
the class name (hdfs-native maps three of them to Python built-ins, the rest
surface as text; Java rethrows the named class), so the names must be the
exact Hadoop ones.
"""

from __future__ import annotations


class RemoteError(Exception):
    """Base: a Java exception reported to the client; the connection stays open."""

    java_class = "java.io.IOException"

    def __init__(self, message: str, java_class: str | None = None):
        super().__init__(message)
        if java_class is not None:
            self.java_class = java_class


class FileNotFound(RemoteError):
    java_class = "java.io.FileNotFoundException"


class FileAlreadyExists(RemoteError):
    java_class = "org.apache.hadoop.fs.FileAlreadyExistsException"


class AlreadyBeingCreated(RemoteError):
    java_class = "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException"


class AccessControl(RemoteError):
    java_class = "org.apache.hadoop.security.AccessControlException"


class PathIsNotEmptyDirectory(RemoteError):
    java_class = "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"


class ParentNotDirectory(RemoteError):
    java_class = "org.apache.hadoop.fs.ParentNotDirectoryException"


class InvalidPath(RemoteError):
    java_class = "org.apache.hadoop.fs.InvalidPathException"


class LeaseExpired(RemoteError):
    java_class = "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException"


class NSQuotaExceeded(RemoteError):
    java_class = "org.apache.hadoop.hdfs.protocol.NSQuotaExceededException"


class DSQuotaExceeded(RemoteError):
    java_class = "org.apache.hadoop.hdfs.protocol.DSQuotaExceededException"


class SnapshotAccessControl(RemoteError):
    java_class = "org.apache.hadoop.hdfs.protocol.SnapshotAccessControlException"


class SnapshotError(RemoteError):
    java_class = "org.apache.hadoop.hdfs.protocol.SnapshotException"


class UnsupportedOperation(RemoteError):
    java_class = "java.lang.UnsupportedOperationException"


class IllegalArgument(RemoteError):
    java_class = "org.apache.hadoop.HadoopIllegalArgumentException"


class NoSuchMethod(RemoteError):
    """Sent with errorDetail ERROR_NO_SUCH_METHOD rather than ERROR_APPLICATION."""

    java_class = "org.apache.hadoop.ipc.RpcNoSuchMethodException"


class InvalidRequest(RemoteError):
    """Centralized Cache Management's refusals: unknown pool or directive id, a bad
    path, replication or expiration, a pool over its limit."""

    java_class = "org.apache.hadoop.fs.InvalidRequestException"
