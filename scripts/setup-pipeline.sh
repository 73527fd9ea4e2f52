#!/usr/bin/env bash
# Set up the `pipeline` tier (issue 18: Spark -> HDFS -> CSI volume -> PyTorch and
# TensorFlow): installs into the project's virtual environment, only for this tier,
#   pyspark         Apache Spark 4 with its bundled Hadoop client (runs on the JDK);
#                   an sdist of ~450 MB that pip builds into a wheel once (~470 MB installed)
#   tensorflow-cpu  TensorFlow without CUDA (~260 MB wheel, ~1 GB installed with keras etc.)
#   torch           PyTorch (a CUDA build, ~5 GB installed; skipped if already there)
# Nothing from Maven: Spark's TFRecord data source (com.linkedin.sparktfrecord) is not
# served by the registry reachable here, so the Spark job writes its TFRecord shards with
# TensorFlow's own writer (see hdfs_csi/pipeline.py).  Spark brings its Hadoop client.
#
# Idempotent: a second run only checks.  Needs scripts/setup.sh to have made the venv,
# and a JDK 17 (java).  Environment:
#   HDFS_CSI_VENV              the virtual environment (default: .venv in the repo)
#
# Run the tier with:  .venv/bin/python -m pytest -m pipeline tests/pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HDFS_CSI_VENV:-$PWD/.venv}"
PY="$VENV/bin/python"
# shellcheck source=scripts/pip-install.sh
. scripts/pip-install.sh
if [ ! -x "$PY" ]; then
  echo "setup-pipeline: no virtual environment at $VENV: run scripts/setup.sh first" >&2
  exit 1
fi
for tool in java; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "setup-pipeline: \`$tool\` not found: install a JDK 17" \
         "(apt-get install -y openjdk-17-jdk-headless)" >&2
    exit 1
  fi
done

# Exact versions: the TFRecord connector must match Spark's Scala version, and a
# new Spark or TensorFlow is a change to review, not something a rerun picks up.
PYSPARK_SPEC="pyspark==4.3.0"
TF_SPEC="tensorflow-cpu==2.21.0"

want=()
"$PY" -c 'import pyspark' 2>/dev/null || want+=("$PYSPARK_SPEC")
"$PY" -c 'import tensorflow' 2>/dev/null || want+=("$TF_SPEC")
if [ ${#want[@]} -gt 0 ]; then
  echo "setup-pipeline: installing ${want[*]} into $VENV" \
       "(pyspark: ~450 MB download, built once; tensorflow-cpu: ~260 MB download)" >&2
  t0=$(date +%s)
  pip_install "${want[@]}"
  echo "setup-pipeline: installed in $(( $(date +%s) - t0 )) s" >&2
fi
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "setup-pipeline: installing PyTorch from PyPI (a CUDA build: ~5 GB on disk, once)" >&2
  pip_install torch
fi

"$PY" -m hdfs_csi.pipeline check-installed
echo "setup-pipeline: ready" >&2
