"""hdfs-csi: mount HDFS datasets into Kubernetes pods through CSI and FUSE.

The top floor: the ``hdfs-csi`` command dispatcher (:mod:`.cli`) and the two
demos (:mod:`.demo`, :mod:`.pipeline`, with what both drive in
:mod:`.demo_harness`).  Nothing below imports this package: the components
live in their own top-level packages (``csi_driver``, ``fuse_mount``,
``hdfs_client``, ``minidfs``, ...), and what they all share is in
``hdfs_csi_common``.
"""

from hdfs_csi_common import __version__

__all__ = ["__version__"]
