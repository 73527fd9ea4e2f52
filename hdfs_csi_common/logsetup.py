"""Logging set-up shared by every long-running command.

Kubernetes collects stderr, so logs go there as single lines with a level and
component name; ``--log-level`` and ``HDFS_CSI_LOG_LEVEL`` choose verbosity.
"""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: str | None = None, component: str = "hdfs-csi") -> None:
    level_name = (level or os.environ.get("HDFS_CSI_LOG_LEVEL") or "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s %(levelname)s {component} %(name)s: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level_name, logging.INFO))
