"""Fixtures of the tests only a real cluster can run (HA, erasure coding): the FUSE
mount fixture comes from ``tests/fuse_mount/fusetest_helpers.py``."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "fuse_mount"))

from fusetest_helpers import mount_factory  # noqa: E402,F401  (pytest fixture)
