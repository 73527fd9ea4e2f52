"""Fixtures of the FUSE tests (defined in ``fuse_kit``)."""

from fuse_kit import mount_factory  # noqa: F401  (pytest fixture)
