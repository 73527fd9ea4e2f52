"""Errors are mapped once per boundary, and every HDFS error class has its entry in
both tables: a class added to the seam without one would reach FUSE callers as a
generic EIO and CSI callers as INTERNAL (which a CO retries forever)."""

from __future__ import annotations

import inspect

from csi_driver.errors import STATUS_TABLE
from fuse_mount.errors import ERRNO_TABLE
from hdfs_client import errors as hdfs_errors


def _hdfs_error_classes() -> set[type]:
    return {c for _, c in inspect.getmembers(hdfs_errors, inspect.isclass)
            if issubclass(c, hdfs_errors.HdfsError) and c is not hdfs_errors.HdfsError}


def test_every_hdfs_error_class_has_an_errno() -> None:
    mapped = {cls for cls, _ in ERRNO_TABLE}
    assert _hdfs_error_classes() - mapped == set()


def test_every_hdfs_error_class_has_a_grpc_status() -> None:
    assert _hdfs_error_classes() - set(STATUS_TABLE) == set()


def test_every_remote_exception_maps_to_a_seam_class() -> None:
    assert set(hdfs_errors.REMOTE_EXCEPTIONS.values()) <= _hdfs_error_classes()
