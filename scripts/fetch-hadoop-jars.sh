#!/usr/bin/env bash
# Fetch the Hadoop 3.5.0 Java client jars for the optional `java` test tier.
#
# Why pyspark: PyPI is the only package registry reachable from CI/dev boxes,
# and the pyspark sdist bundles Hadoop's shaded client jars
# (hadoop-client-api/-runtime) plus the logging jars they need.  We unpack only
# those few jars (~40 MB) out of the ~450 MB sdist.
#
# Usage: scripts/fetch-hadoop-jars.sh [DEST]
#   DEST           default ${XDG_CACHE_HOME:-$HOME/.cache}/hdfs-csi/hadoop-jars
#   PYSPARK_SDIST  an already downloaded pyspark-4.3.0.tar.gz (skips pip download)
# Idempotent: exits at once when every jar is already in DEST.
set -euo pipefail

PYSPARK_VERSION=4.3.0
DEST="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/hdfs-csi/hadoop-jars}"

# Minimal runtime set, found by trial: the shaded client needs commons-logging
# (provided by jcl-over-slf4j) and slf4j-api; log4j2 is the slf4j provider so
# `-Dlog4j2.configurationFile`/level properties give DEBUG wire logs when needed.
JARS=(
  hadoop-client-api-3.5.0.jar
  hadoop-client-runtime-3.5.0.jar
  slf4j-api-2.0.17.jar
  jcl-over-slf4j-2.0.17.jar
  log4j-slf4j2-impl-2.25.4.jar
  log4j-api-2.25.4.jar
  log4j-core-2.25.4.jar
)

have_all() {
  local j
  for j in "${JARS[@]}"; do [ -s "$DEST/$j" ] || return 1; done
}

if have_all; then
  echo "hadoop jars already present in $DEST"
  exit 0
fi

mkdir -p "$DEST"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

SDIST="${PYSPARK_SDIST:-}"
if [ -z "$SDIST" ]; then
  PY="${PYTHON:-python3}"
  echo "downloading pyspark==$PYSPARK_VERSION sdist from PyPI (~450 MB)..." >&2
  "$PY" -m pip download --quiet --no-deps --no-binary :all: \
    --dest "$WORK/dl" "pyspark==$PYSPARK_VERSION" >&2
  SDIST="$(ls "$WORK"/dl/pyspark-"$PYSPARK_VERSION".tar.gz)"
fi
[ -s "$SDIST" ] || { echo "error: pyspark sdist not found: $SDIST" >&2; exit 1; }

MEMBERS=()
for j in "${JARS[@]}"; do MEMBERS+=("pyspark-$PYSPARK_VERSION/deps/jars/$j"); done
tar -xzf "$SDIST" -C "$WORK" "${MEMBERS[@]}"

# Move into place one by one (rename is atomic within the filesystem of DEST
# only, so copy to a temp name next to the target first).
for j in "${JARS[@]}"; do
  cp "$WORK/pyspark-$PYSPARK_VERSION/deps/jars/$j" "$DEST/.$j.tmp"
  mv -f "$DEST/.$j.tmp" "$DEST/$j"
done
have_all
echo "hadoop jars installed in $DEST"
