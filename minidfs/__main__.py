"""``python -m minidfs`` = ``hdfs-csi minidfs`` (used by MiniDFSProcess)."""

import sys

from minidfs.cli import main

sys.exit(main())
