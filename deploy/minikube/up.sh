#!/usr/bin/env bash
# hdfs-csi on minikube, from nothing to a pod reading and writing HDFS.
#
#   deploy/minikube/up.sh            start minikube (if needed), build the image
#                                    inside it, install hdfs-csi + minidfs, smoke test
#   deploy/minikube/up.sh smoke      only the smoke test (PVC + pod write/read)
#   deploy/minikube/up.sh down       uninstall hdfs-csi (the minikube cluster stays)
#
# Environment: MINIKUBE_PROFILE (default hdfs-csi), MINIKUBE_START_ARGS (extra
# `minikube start` flags, e.g. "--driver=kvm2"), KUBECTL (default kubectl).
set -euo pipefail
cd "$(dirname "$0")/../.."

PROFILE="${MINIKUBE_PROFILE:-hdfs-csi}"
KUBECTL="${KUBECTL:-kubectl}"
IMAGE="ghcr.io/hdfs-csi/hdfs-csi:0.1.0"   # the tag deploy/base pins
k() { "$KUBECTL" --context "$PROFILE" "$@"; }
say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'up.sh: %s\n' "$*" >&2; exit 1; }

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (see deploy/minikube/README.md)"
  done
}

start_cluster() {
  if minikube -p "$PROFILE" status >/dev/null 2>&1; then
    say "minikube profile $PROFILE is running"
  else
    say "starting minikube profile $PROFILE"
    # shellcheck disable=SC2086  # MINIKUBE_START_ARGS is a list of flags
    minikube start -p "$PROFILE" --cpus=2 --memory=4g ${MINIKUBE_START_ARGS:-}
  fi
  minikube -p "$PROFILE" ssh -- test -c /dev/fuse \
    || die "the minikube node has no /dev/fuse: FUSE mounts cannot work (try another --driver)"
}

build_image() {
  say "building $IMAGE inside minikube (no registry needed)"
  minikube -p "$PROFILE" image build -t "$IMAGE" .
}

install() {
  say "installing hdfs-csi with an in-cluster minidfs"
  k apply -k deploy/overlays/minikube
  # A rebuilt image keeps its tag: restart so running pods pick it up.
  k -n hdfs-csi rollout restart deployment/minidfs deployment/hdfs-csi-controller \
    daemonset/hdfs-csi-node >/dev/null
  k -n hdfs-csi rollout status deployment/minidfs --timeout=5m
  k -n hdfs-csi rollout status deployment/hdfs-csi-controller --timeout=5m
  k -n hdfs-csi rollout status daemonset/hdfs-csi-node --timeout=5m
}

smoke() {
  say "smoke test: a dynamic volume written and read by a pod"
  k delete -k deploy/minikube/smoke --ignore-not-found --wait=true >/dev/null
  k apply -k deploy/minikube/smoke
  k -n hdfs-csi-smoke wait --for=jsonpath='{.status.phase}'=Bound pvc/smoke --timeout=3m
  if ! k -n hdfs-csi-smoke wait --for=jsonpath='{.status.phase}'=Succeeded pod/smoke --timeout=5m; then
    k -n hdfs-csi-smoke describe pod/smoke >&2 || true
    k -n hdfs-csi logs daemonset/hdfs-csi-node -c hdfs-csi-driver --tail=50 >&2 || true
    die "smoke pod did not succeed"
  fi
  k -n hdfs-csi-smoke logs pod/smoke
  local pv
  pv="$(k -n hdfs-csi-smoke get pvc smoke -o jsonpath='{.spec.volumeName}')"
  say "the same bytes, read from HDFS itself (minidfs pod):"
  k -n hdfs-csi exec deployment/minidfs -- python -c "
import os, hdfs_client
c = hdfs_client.connect('hdfs://' + os.environ['POD_IP'] + ':8020')
path = '/k8s/volumes/$pv/hello.txt'
n = c.get_status(path).length
print(path + ':', c.open_reader(path).read_range(0, n).decode().strip())"
  k delete -k deploy/minikube/smoke --wait=false >/dev/null
  say "hdfs-csi works. Next: deploy/examples/ and docs/INSTALL.md"
}

down() {
  need "$KUBECTL"
  k delete -k deploy/minikube/smoke --ignore-not-found >/dev/null || true
  k delete -k deploy/overlays/minikube --ignore-not-found
}

case "${1:-up}" in
  up) need minikube "$KUBECTL"; start_cluster; build_image; install; smoke ;;
  smoke) need "$KUBECTL"; smoke ;;
  down) down ;;
  *) die "usage: $0 [up|smoke|down]" ;;
esac
