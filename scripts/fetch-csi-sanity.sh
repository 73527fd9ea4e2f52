#!/usr/bin/env bash
# Install the real csi-sanity (kubernetes-csi/csi-test) for the default test tier.
#
# Why go install: csi-test publishes no binaries, and the Go module proxy is
# one of the registries CI reaches.  Everything Go writes (module cache, build
# cache, the binary) stays under one cache directory, so a clean clone on a
# warm cache costs nothing and `rm -rf ~/.cache/hdfs-csi/go` undoes it all:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/hdfs-csi/bin/csi-sanity   the binary (GOBIN)
#   ${XDG_CACHE_HOME:-$HOME/.cache}/hdfs-csi/go/              GOPATH, GOMODCACHE, GOCACHE
#
# The version is pinned: a new csi-sanity release adds cases, and a new case
# should arrive as a reviewed change to this line, not as a red CI run.
# Idempotent: when the binary is there and was built from the pinned version
# (read from its embedded build info) the script exits at once, silently.
# Quiet when it works; on failure Go's output is shown.
#
# Usage: scripts/fetch-csi-sanity.sh [--print-path]
#   --print-path   print the binary's path on stdout (after installing it)
#   GO             the go command to use (default: go on PATH, then /usr/local/go/bin/go)
set -euo pipefail

CSI_TEST_MODULE=github.com/kubernetes-csi/csi-test/v5
CSI_TEST_VERSION=v5.6.0

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/hdfs-csi"
BIN_DIR="$CACHE/bin"
BIN="$BIN_DIR/csi-sanity"

find_go() {
  local g
  for g in "${GO:-}" "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go \
           "${GOROOT:-/nonexistent}/bin/go" /usr/lib/go/bin/go; do
    if [ -n "$g" ] && [ -x "$g" ]; then echo "$g"; return 0; fi
  done
  return 1
}

GO_BIN="$(find_go)" || {
  echo "fetch-csi-sanity: no Go toolchain found (tried \$GO, PATH, /usr/local/go/bin/go);" \
       "install Go >= 1.22 or set GO=/path/to/go" >&2
  exit 1
}

export GOPATH="$CACHE/go"
export GOMODCACHE="$CACHE/go/pkg/mod"
export GOCACHE="$CACHE/go/build-cache"
export GOBIN="$BIN_DIR"
# -modcacherw: the module cache is otherwise read-only and `rm -rf` of the cache fails
# for non-root users; -buildvcs=false: we build from the module cache, not a checkout.
export GOFLAGS="-modcacherw -buildvcs=false"
export CGO_ENABLED=0

installed_version() {
  # `go version -m` prints "mod <module> <version> <sum>" for the main module
  [ -x "$BIN" ] || return 1
  "$GO_BIN" version -m "$BIN" 2>/dev/null | awk -v m="$CSI_TEST_MODULE" '$1 == "mod" && $2 == m {print $3}'
}

if [ "$(installed_version || true)" != "$CSI_TEST_VERSION" ]; then
  mkdir -p "$BIN_DIR" "$GOPATH"
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  if ! "$GO_BIN" install "$CSI_TEST_MODULE/cmd/csi-sanity@$CSI_TEST_VERSION" >"$log" 2>&1; then
    echo "fetch-csi-sanity: go install $CSI_TEST_MODULE/cmd/csi-sanity@$CSI_TEST_VERSION failed:" >&2
    cat "$log" >&2
    exit 1
  fi
  got="$(installed_version || true)"
  if [ "$got" != "$CSI_TEST_VERSION" ]; then
    echo "fetch-csi-sanity: $BIN reports version '${got:-?}', expected $CSI_TEST_VERSION" >&2
    exit 1
  fi
fi

if [ "${1:-}" = "--print-path" ]; then
  echo "$BIN"
fi
