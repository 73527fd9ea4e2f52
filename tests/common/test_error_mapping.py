"""Whatever hdfs-native raises becomes exactly one domain error.

The real client only produces some of these on demand (a Rust panic cannot
be provoked from a test), so the mapping itself is checked with the exception
shapes hdfs-native is documented to raise.
"""

from __future__ import annotations

import errno

import pytest

from hdfs_client import errors
from fuse_mount.errors import errno_for
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
    assert errno_for(mapped) == eno   # the FUSE layer's one errno table
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


def test_remote_messages_keep_the_first_line_not_the_java_stack() -> None:
    """Hadoop's NameNode sends many exceptions with their stack trace; hdfs-native
    hands it on in Rust's Debug form.  Only the message travels on (gRPC details,
    events, logs), unescaped, with the class kept for the errno."""
    text = ('RPCError("org.apache.hadoop.security.AccessControlException", "Permission denied: '
            'user=alice, access=WRITE, inode=\\"/d/ünï\\":hdfs:supergroup:drwxr-xr-x\\n'
            '\\tat org.apache.hadoop.hdfs.server.namenode.FSPermissionChecker.check(X.java:1)\\n")')
    mapped = map_exception(RuntimeError(text), "/d")
    assert type(mapped) is errors.PermissionDenied
    assert str(mapped) == ('Permission denied: user=alice, access=WRITE, '
                           'inode="/d/ünï":hdfs:supergroup:drwxr-xr-x')
    assert mapped.remote_class == "org.apache.hadoop.security.AccessControlException"
    unknown = map_exception(RuntimeError('RPCError("org.example.Odd", "odd\\n\\tat x")'))
    assert type(unknown) is errors.HdfsIOError and str(unknown) == "odd"
    remote = errors.from_remote("java.io.IOException", "first line\n\tat a.b(C.java:1)\n")
    assert str(remote) == "first line"


def test_real_permission_errors_carry_no_stack_trace(dfs) -> None:
    """The same through the real clients, on both backends (Hadoop's NameNode is the
    one that sends traces)."""
    from hdfs_client import connect

    with connect(dfs.uri) as su:
        su.mkdirs("/locked", permission=0o700)
    with connect(dfs.uri, user="mallory") as c:
        for call in (lambda: c.mkdirs("/locked/x"), lambda: c.get_status("/locked/x"),
                     lambda: c.write_file("/locked/f", b"x")):
            with pytest.raises(errors.PermissionDenied) as info:
                call()
            text = str(info.value)
            assert "user=mallory" in text
            assert "\tat " not in text and "RPCError" not in text and "\n" not in text, text
