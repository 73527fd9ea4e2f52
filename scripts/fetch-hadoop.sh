#!/usr/bin/env bash
# Fetch Apache Hadoop 3.5.0 for the `hadoop` backend and the `java` client tier.
#
# Resolves hadoop_cluster/java/pom.xml with Maven (Central) into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/hdfs-csi/hadoop/jars   (repo: .../hdfs-csi/m2)
# and compiles the MiniDFSCluster launcher with javac into .../hdfs-csi/hadoop/classes.
# Needs a JDK (java, javac) and mvn.  Idempotent: a second run only checks the cache.
# The work is done by hadoop_cluster/toolchain.py (the same code the tests call),
# so the script and the test fixtures can never disagree about where things are.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
fi
cd "$REPO"
exec "$PY" -m hadoop_cluster.toolchain
