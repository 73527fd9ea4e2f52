"""The one errno table of the FUSE layer.

The filesystem core raises either domain errors from :mod:`hdfs_client.errors`
(what HDFS said) or :class:`FsError` (a POSIX answer the core chose itself,
e.g. ``EROFS`` on a read-only mount or ``ENOTSUP`` for a random-offset write).
The adapter turns both into an errno with :func:`errno_for`, and nothing else
in the code base picks errno values for HDFS failures.  Anything unexpected
becomes ``EIO``: a caller can retry ``EIO``, whereas mfusepy's own default
(``EINVAL``) would tell it the request itself was wrong.
"""

from __future__ import annotations

import errno
import os

from hdfs_client import errors as hdfs_errors


class FsError(Exception):
    """A POSIX error chosen by the filesystem core; carries its errno."""

    def __init__(self, code: int, message: str | None = None):
        super().__init__(message or os.strerror(code))
        self.errno = code


#: errors that are answers, not incidents: the adapters log them at DEBUG only
QUIET_ERRNOS = frozenset({errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR,
                          errno.EISDIR, errno.EROFS, errno.EACCES, errno.ENOTSUP,
                          errno.EINVAL})


#: Domain error -> errno.  Order matters: subclasses before their bases
#: (HdfsTimeout is an HdfsIOError).
ERRNO_TABLE: tuple[tuple[type[hdfs_errors.HdfsError], int], ...] = (
    (hdfs_errors.NotFound, errno.ENOENT),
    (hdfs_errors.AlreadyExists, errno.EEXIST),
    (hdfs_errors.PermissionDenied, errno.EACCES),
    (hdfs_errors.NotEmpty, errno.ENOTEMPTY),
    (hdfs_errors.NotADirectory, errno.ENOTDIR),
    (hdfs_errors.IsADirectory, errno.EISDIR),
    (hdfs_errors.QuotaExceeded, errno.EDQUOT),
    (hdfs_errors.InvalidPath, errno.EINVAL),
    # Another client holds the write lease: the file is busy, retry later.
    (hdfs_errors.LeaseConflict, errno.EBUSY),
    (hdfs_errors.Unsupported, errno.ENOTSUP),
    (hdfs_errors.InvalidRequest, errno.EINVAL),
    (hdfs_errors.HdfsTimeout, errno.EIO),
    (hdfs_errors.HdfsIOError, errno.EIO),
)


def errno_for(exc: BaseException) -> int:
    """The errno a POSIX caller sees for ``exc`` (``EIO`` when unknown)."""
    if isinstance(exc, FsError):
        return exc.errno
    for cls, code in ERRNO_TABLE:
        if isinstance(exc, cls):
            return code
    if isinstance(exc, hdfs_errors.HdfsError):
        return errno.EIO
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        # e.g. the local cache directory; only reached when the core let it escape
        return exc.errno
    return errno.EIO
