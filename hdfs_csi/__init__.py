"""hdfs-csi: mount HDFS datasets into Kubernetes pods through CSI and FUSE.

This package holds what every component shares: the ``hdfs-csi`` command
dispatcher, size/duration parsing and logging setup.  The components live in
their own top-level packages (``minidfs``, ``hdfs_client``, ``fuse_mount``,
``csi_driver``, ``benchmarks``) so their layering stays visible.
"""

__version__ = "0.1.0"
