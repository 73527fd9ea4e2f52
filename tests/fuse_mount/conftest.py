"""Fixtures of the FUSE tests (defined in ``fusetest_helpers``)."""

from fusetest_helpers import mount_factory  # noqa: F401  (pytest fixture)
