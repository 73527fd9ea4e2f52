"""Fixtures of the training tests: the FUSE mount fixture comes from
``tests/fuse_mount/fuse_kit.py``, minidfs from ``tests/dfs_kit.py``."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "fuse_mount"))

from fuse_kit import mount_factory  # noqa: E402,F401  (pytest fixture)
