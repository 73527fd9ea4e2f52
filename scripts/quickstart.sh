#!/usr/bin/env bash
# Set up (see setup.sh) and run the end-to-end demo: minidfs + CSI driver +
# a real FUSE mount + reads through it.  Extra arguments go to `hdfs-csi demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
HDFS_CSI_TORCH="${HDFS_CSI_TORCH:-yes}" bash scripts/setup.sh
VENV="${HDFS_CSI_VENV:-$PWD/.venv}"
exec "$VENV/bin/hdfs-csi" demo "$@"
