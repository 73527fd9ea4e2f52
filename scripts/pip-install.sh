# Sourced by setup.sh and setup-pipeline.sh: pip_install ARGS... runs
# `$PY -m pip install -q ARGS...` with its output kept in a log, not on the
# terminal.  pip's resolver prints "ERROR: Could not find a version ..." for a
# candidate it then replaces (seen installing torch from this machine's
# mirror), and package mirrors add warnings to every request: alarming when
# the install works.  On success nothing is printed; on failure pip is tried
# once more (mirrors time out), and if that fails too the end of its log is
# shown and set-up stops.
pip_install() {
  local log attempt
  log="$(mktemp "${TMPDIR:-/tmp}/hdfs-csi-pip.XXXXXX")"
  for attempt in 1 2; do
    if PYTHONWARNINGS=ignore "$PY" -m pip install -q --disable-pip-version-check "$@" \
         >"$log" 2>&1; then
      rm -f "$log"
      return 0
    fi
    if [ "$attempt" = 1 ]; then
      echo "setup: pip install $* did not finish; trying once more" >&2
    fi
  done
  echo "setup: pip install $* failed; the end of its output:" >&2
  tail -n 25 "$log" >&2
  rm -f "$log"
  return 1
}
