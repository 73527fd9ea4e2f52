"""The write path of a mount: one :class:`WriteHandle` per open-for-write, and
:class:`Writes`, which streams its writes into HDFS.

HDFS files are written sequentially by one writer (a lease): a handle's
writes go, in order, into one ``HdfsWriter`` opened at the first write
(create, or append at the end), and ``close(2)`` (FUSE ``flush``) finishes
the HDFS file so that errors reach the caller there.  A write at any other
offset is ``ENOTSUP``; once a write failed, every later call of the handle
fails with ``EIO`` until it is closed; ``ftruncate`` of an open handle to 0
starts the file over.  See SEMANTICS.md for the exact rules.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import Any

from fuse_mount.errors import FsError
from fuse_mount.read_handle import ReadHandle, close_quietly
from hdfs_client import errors as hdfs_errors
from hdfs_client.base import HdfsClient, HdfsWriter


class WriteHandle:
    """One open-for-write: a sequential stream into an HdfsWriter."""

    def __init__(self, path: str, hpath: str, *, append: bool, pos: int | None, base_len: int,
                 permission: int):
        self.path = path
        self.hpath = hpath
        self.append = append          # O_APPEND: every write goes to the end
        self.pos = pos                # next expected offset; None = not decided yet
        self.base_len = base_len      # file length at open
        self.permission = permission
        self.writer: HdfsWriter | None = None
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self.reads: ReadHandle | None = None  # O_RDWR reads
        self.reads_pos: int | None = None


class Writes:
    """Streams writes of :class:`WriteHandle` s into HDFS; see the module docstring.

    It asks the filesystem for what it owns: ``call`` runs an HDFS call with the
    mount's timeout, ``fresh_length`` reads a file's length from the NameNode,
    ``invalidate`` forgets what the mount knows of a path changed through it
    (attributes and kernel pages), ``invalidate_attrs`` only its attributes.
    """

    def __init__(self, client: HdfsClient, *, call: Callable[..., Any],
                 fresh_length: Callable[[str], int], invalidate: Callable[[str], None],
                 invalidate_attrs: Callable[[str], None]):
        self.client = client
        self._call = call
        self.fresh_length = fresh_length
        self.invalidate = invalidate
        self.invalidate_attrs = invalidate_attrs

    def write(self, h: WriteHandle, data: bytes, offset: int) -> int:
        with h.lock:
            if h.error is not None:
                raise FsError(errno.EIO, f"earlier write failed: {h.error}")
            if h.writer is None:
                self._open_writer(h, offset)
            if not h.append and offset != h.pos:
                raise FsError(errno.ENOTSUP,
                              f"HDFS files are written sequentially; write at {offset}, "
                              f"expected {h.pos}")
            assert h.writer is not None
            try:
                self._call(write_all, h.writer, data, what="write")
            except BaseException as exc:
                h.error = exc
                raise
            h.pos = (h.pos or 0) + len(data)
        return len(data)

    def _open_writer(self, h: WriteHandle, offset: int) -> None:
        """First write on a handle (or first after a flush): pick create or append."""
        if h.append:
            h.writer = self._call(self.client.append, h.hpath, what="append")
            h.pos = self.fresh_length(h.path)
            return
        if h.pos is None:  # opened without O_TRUNC/O_APPEND: allowed at 0 of empty, or at end
            if offset == 0 and h.base_len == 0:
                h.writer = self._call(self.client.create, h.hpath, overwrite=True,
                                      permission=h.permission, what="create")
                h.pos = 0
                return
            if offset == h.base_len:
                h.writer = self._call(self.client.append, h.hpath, what="append")
                h.pos = h.base_len
                return
            raise FsError(errno.ENOTSUP,
                          f"HDFS cannot overwrite in place (write at {offset} of a "
                          f"{h.base_len}-byte file); open with O_TRUNC or O_APPEND")
        if offset != h.pos:
            raise FsError(errno.ENOTSUP, f"write at {offset}, expected {h.pos}")
        h.writer = self._call(self.client.append, h.hpath, what="append")

    def fsync(self, h: WriteHandle) -> None:
        """``fsync(2)``: hsync what was written so far (readers see it), report a failure."""
        with h.lock:
            if h.error is not None:
                raise FsError(errno.EIO, f"earlier write failed: {h.error}")
            if h.writer is not None:
                try:
                    self._call(h.writer.hsync, what="hsync")
                except BaseException as exc:
                    h.error = exc
                    raise
        self.invalidate_attrs(h.path)

    def truncate(self, h: WriteHandle, length: int) -> bool:
        """``ftruncate`` of an open handle: to its current length (nothing to do,
        False), or to 0, which starts the file over with a new writer (True).
        Any other length is ``ENOTSUP``: HDFS cannot cut a file being written."""
        with h.lock:
            current = h.pos if h.pos is not None else h.base_len
            if length == current:
                return False
            if length != 0:
                raise FsError(errno.ENOTSUP, "HDFS files can only be truncated to 0 "
                              "or extended")
            old, h.writer = h.writer, None
            if old is not None:
                close_quietly(old)
            h.writer = self._call(self.client.create, h.hpath, overwrite=True,
                                  permission=h.permission, what="create")
            h.pos = 0
            h.error = None
        return True

    def finish(self, h: WriteHandle) -> None:
        """Close the HDFS file (``close(2)``, and release): others see it; an error of this
        handle is raised here, once."""
        with h.lock:
            writer, h.writer = h.writer, None
            err = h.error
            if writer is not None:
                try:
                    self._call(writer.close, what="close")
                except BaseException as exc:
                    h.error = err = exc
            self.invalidate(h.path)
            if err is not None:
                h.error = None  # reported once, at this close
                raise err


def write_all(writer: HdfsWriter, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = writer.write(view)
        if n <= 0:
            raise hdfs_errors.HdfsIOError("HDFS writer accepted no bytes")
        view = view[n:]
