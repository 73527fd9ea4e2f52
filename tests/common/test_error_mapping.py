"""Whatever hdfs-native raises becomes exactly one domain error.

The real client only produces some of these on demand (a Rust panic cannot
be provoked from a test), so the mapping itself is checked with the exception
shapes hdfs-native is documented to raise.
"""

from __future__ import annotations

import errno

import pytest

from hdfs_client import errors
from hdfs_client.native import map_exception, translate_errors


class PanicException(BaseException):
    """Same name and base class as pyo3_runtime.PanicException."""


@pytest.mark.parametrize("exc,cls,eno", [
    (FileNotFoundError("File does not exist: /x"), errors.NotFound, errno.ENOENT),
    (FileExistsError("/x already exists"), errors.AlreadyExists, errno.EEXIST),
    (FileExistsError("AlreadyBeingCreatedException: lease held"),
     errors.LeaseConflict, errno.EBUSY),
    (RuntimeError('RPCError("org.apache.hadoop.security.AccessControlException", "denied")'),
     errors.PermissionDenied, errno.EACCES),
    (RuntimeError('RPCError("org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", "/d")'),
     errors.NotEmpty, errno.ENOTEMPTY),
    (RuntimeError('RPCError("org.apache.hadoop.fs.ParentNotDirectoryException", "/f")'),
     errors.NotADirectory, errno.ENOTDIR),
    (RuntimeError('RPCError("org.apache.hadoop.hdfs.protocol.DSQuotaExceededException", "q")'),
     errors.QuotaExceeded, errno.EDQUOT),
    (RuntimeError('RPCError("org.apache.hadoop.hdfs.protocol.NSQuotaExceededException", "q")'),
     errors.QuotaExceeded, errno.EDQUOT),
    (RuntimeError("connection reset by peer"), errors.HdfsIOError, errno.EIO),
    (PanicException("called `Option::unwrap()` on a `None` value"), errors.HdfsIOError, errno.EIO),
])
def test_map_exception(exc: BaseException, cls: type, eno: int) -> None:
    mapped = map_exception(exc, "/p")
    assert type(mapped) is cls
    assert mapped.errno == eno
    assert mapped.path == "/p"


def test_translate_errors_catches_panics_but_not_interrupts() -> None:
    class Thing:
        @translate_errors
        def boom(self, path: str) -> None:
            raise PanicException("index out of bounds")

        @translate_errors
        def interrupted(self, path: str) -> None:
            raise KeyboardInterrupt

    with pytest.raises(errors.HdfsIOError, match="panicked"):
        Thing().boom("/a")
    with pytest.raises(KeyboardInterrupt):
        Thing().interrupted("/a")


def test_remote_class_table_is_used_by_from_remote() -> None:
    err = errors.from_remote("org.apache.hadoop.fs.FileAlreadyExistsException", "exists", "/a")
    assert isinstance(err, errors.AlreadyExists) and err.remote_class.endswith("Exception")
    assert isinstance(errors.from_remote("com.example.Weird", "?"), errors.HdfsIOError)
