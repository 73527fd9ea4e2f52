import sys

from hdfs_csi.cli import main

sys.exit(main())
