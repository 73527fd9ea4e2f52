#!/usr/bin/env bash
# Set up (see setup.sh, with the real test peers: Hadoop's MiniDFSCluster,
# csi-sanity, a KDC) and run the tests.
#
#   scripts/test.sh                 what CI runs: the default tier (minidfs, no JVM),
#                                   then the real-HDFS tier (-m "hadoop and not slow")
#   scripts/test.sh ARGS...         pytest with ARGS; the default tier's selection
#                                   lives in pyproject.toml (addopts), so ARGS add to
#                                   it (--durations=15, -k ...) unless they give -m:
#                                   -m slow, -m java, -m hadoop, -m e2e
set -euo pipefail
cd "$(dirname "$0")/.."
HDFS_CSI_REAL_PEERS="${HDFS_CSI_REAL_PEERS:-yes}" bash scripts/setup.sh
VENV="${HDFS_CSI_VENV:-$PWD/.venv}"
PYTEST=("$VENV/bin/python" -m pytest -q -p no:cacheprovider)
if [ $# -gt 0 ]; then
  exec "${PYTEST[@]}" "$@"
fi
echo "test: default tier (minidfs)" >&2
default_rc=0
"${PYTEST[@]}" || default_rc=$?
echo "test: real-HDFS tier (Apache Hadoop's MiniDFSCluster)" >&2
hadoop_rc=0
"${PYTEST[@]}" -m "hadoop and not slow" || hadoop_rc=$?
echo "test: default tier exit $default_rc, real-HDFS tier exit $hadoop_rc" >&2
[ "$default_rc" = 0 ] && [ "$hadoop_rc" = 0 ]
