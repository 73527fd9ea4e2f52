"""The bottom floor: what every package of hdfs-csi may use and that uses none of them.

Size and duration parsing (:mod:`.units`), a token-bucket rate limiter
(:mod:`.ratelimit`), logging set-up (:mod:`.logsetup`), the help format every
command line shares (:mod:`.helpformat`), and the version the driver reports.
Nothing here imports another package of the project, so the CSI driver, the
FUSE daemon, the HDFS seam and minidfs can all stand on it.
"""

__version__ = "0.1.0"
