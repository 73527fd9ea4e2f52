#!/usr/bin/env bash
# Set up (see setup.sh) and run the default test tier.  Extra arguments go to
# pytest, e.g. `scripts/test.sh -m slow` for the slow tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${HDFS_CSI_VENV:-$PWD/.venv}"
if [ $# -eq 0 ]; then set -- -m "not slow and not java and not e2e"; fi
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
