#!/usr/bin/env bash
# Set up hdfs-csi on a fresh Debian/Ubuntu machine: system packages (fuse3),
# a virtual environment with the package and its test extras.  Idempotent:
# a second run only checks.  Environment:
#   HDFS_CSI_VENV   where the virtual environment goes (default: .venv in the repo)
#   HDFS_CSI_TORCH  "yes": install PyTorch from PyPI (a ~5 GB CUDA build);
#                   "auto" (default): use it if already installed; "no": skip.
#   HDFS_CSI_TF     "yes": install TensorFlow (tensorflow-cpu from PyPI, ~260 MB
#                   download) for the tfdata bench scenario and the Keras test;
#                   "auto" (default): use it if already installed; "no": skip.
#   HDFS_CSI_REAL_PEERS  "yes": also fetch the real peers of the test tiers
#                   (Hadoop's MiniDFSCluster, csi-sanity, a KDC); default "no".
#   HDFS_CSI_PIPELINE  "yes": also install the Spark -> PyTorch/TensorFlow
#                   pipeline's tools (scripts/setup-pipeline.sh, ~1.9 GB); default "no".
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HDFS_CSI_VENV:-$PWD/.venv}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v fusermount3 >/dev/null 2>&1 || need_apt+=(fuse3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need_apt[*]}" >&2
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -e /dev/fuse ]; then
  echo "setup: warning: /dev/fuse is missing; mounts (demo, FUSE tests) need it" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment $VENV" >&2
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# shellcheck source=scripts/pip-install.sh
. scripts/pip-install.sh
stamp="$VENV/.hdfs-csi-installed"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing hdfs-csi and its dependencies into $VENV" >&2
  pip_install --upgrade pip
  # setuptools warns at length about editable installs of a checkout (harmless here)
  pip_install -e ".[test,bench]"
  touch "$stamp"
fi

# PyTorch from PyPI is a CUDA build of several GB (about 5 GB installed, ~1 min
# on a fast mirror): installed only when asked for.  quickstart.sh asks (the
# demo's last step is a PyTorch DataLoader epoch); the test tiers do not need it.
case "${HDFS_CSI_TORCH:-auto}" in
  yes)
    if ! "$PY" -c 'import torch' 2>/dev/null; then
      echo "setup: installing PyTorch from PyPI (a CUDA build: ~5 GB on disk, once)" >&2
      pip_install torch
    fi ;;
  auto)
    if ! "$PY" -c 'import torch' 2>/dev/null; then
      echo "setup: PyTorch not installed (HDFS_CSI_TORCH=yes installs it, ~5 GB);" \
           "DataLoader steps will be skipped" >&2
    fi ;;
  *) ;;
esac

# TensorFlow (CPU build; the same pinned version as setup-pipeline.sh): only the
# `tfdata` bench scenario and the one-step Keras test use it; both skip without it.
# (found, not imported: importing TensorFlow takes seconds, on every set-up)
have_tf() { "$PY" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("tensorflow") is None)'; }
case "${HDFS_CSI_TF:-auto}" in
  yes)
    if ! have_tf; then
      echo "setup: installing TensorFlow from PyPI (tensorflow-cpu: ~260 MB download, once)" >&2
      pip_install -e ".[tf]"
    fi ;;
  auto)
    if ! have_tf; then
      echo "setup: TensorFlow not installed (HDFS_CSI_TF=yes installs it, ~260 MB);" \
           "the tfdata scenario and Keras test will be skipped" >&2
    fi ;;
  *) ;;
esac

# The real peers of the test tiers: Apache Hadoop's own HDFS (MiniDFSCluster,
# resolved with Maven), the real csi-sanity (go install), a real MIT KDC
# (Debian's krb5-kdc).  Each script is idempotent and cached under
# ~/.cache/hdfs-csi; test.sh asks for them, the quick start does not.
if [ "${HDFS_CSI_REAL_PEERS:-no}" = yes ]; then
  for tool in fetch-hadoop.sh fetch-csi-sanity.sh fetch-kerberos.sh; do
    if [ -x "scripts/$tool" ]; then
      bash "scripts/$tool"
    fi
  done
fi
# The Spark -> hdfs-csi -> PyTorch/TensorFlow pipeline (demo --pipeline, the
# pipeline tier): pyspark, tensorflow-cpu and torch, ~1.9 GB, only when asked.
if [ "${HDFS_CSI_PIPELINE:-no}" = yes ]; then
  HDFS_CSI_VENV="$VENV" bash scripts/setup-pipeline.sh
fi
echo "setup: ready ($VENV)" >&2
