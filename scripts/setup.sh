#!/usr/bin/env bash
# Set up hdfs-csi on a fresh Debian/Ubuntu machine: system packages (fuse3),
# a virtual environment with the package and its test extras.  Idempotent:
# a second run only checks.  Environment:
#   HDFS_CSI_VENV   where the virtual environment goes (default: .venv in the repo)
#   HDFS_CSI_TORCH  "auto" (default): install PyTorch only from a local wheel
#                   (pip's find-links); "yes": from the index (large); "no": skip.
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
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -e /dev/fuse ]; then
  echo "setup: warning: /dev/fuse is missing; mounts (demo, FUSE tests) need it" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment $VENV" >&2
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.hdfs-csi-installed"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing hdfs-csi and its dependencies into $VENV" >&2
  "$PY" -m pip install -q --upgrade pip >/dev/null
  "$PY" -m pip install -q -e ".[test]"
  touch "$stamp"
fi

case "${HDFS_CSI_TORCH:-auto}" in
  yes) "$PY" -c 'import torch' 2>/dev/null || "$PY" -m pip install -q torch ;;
  auto)
    if ! "$PY" -c 'import torch' 2>/dev/null; then
      wheel_dir="$("$PY" -m pip config get global.find-links 2>/dev/null || true)"
      if [ -n "$wheel_dir" ] && ls "$wheel_dir"/torch-*.whl >/dev/null 2>&1; then
        echo "setup: installing PyTorch from the local wheel in $wheel_dir" >&2
        "$PY" -m pip install -q --no-index --find-links "$wheel_dir" torch \
          || "$PY" -m pip install -q --find-links "$wheel_dir" "$(ls "$wheel_dir"/torch-*.whl | head -1)" \
          || echo "setup: PyTorch not installed; DataLoader scenarios will be skipped" >&2
      fi
    fi ;;
  *) ;;
esac
echo "setup: ready ($VENV)" >&2
