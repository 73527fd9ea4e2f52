#!/usr/bin/env bash
# A single-node Kubernetes on this machine, for the e2e tier (tests/e2e, `-m e2e`),
# built from the registries it reaches: no minikube, no Docker, no image registry.
#
#   scripts/e2e-cluster.sh build     build/fetch everything (cached under ~/.cache/hdfs-csi-e2e)
#   scripts/e2e-cluster.sh up        build (if needed), start the cluster, install hdfs-csi
#                                    with deploy/overlays/e2e-local, print KUBECONFIG
#   scripts/e2e-cluster.sh down      stop everything, unmount, delete the cluster's state
#   scripts/e2e-cluster.sh status    what runs, what is mounted
#   scripts/e2e-cluster.sh env       the KUBECONFIG / KUBECTL lines to eval
#
# What it is: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
# kubectl from k8s.io/kubernetes (Go module proxy, one release, its k8s.io/*
# staging modules replaced by their v0.x releases); etcd, containerd, runc, the
# CNI plugins, buildah and mmdebstrap from Debian; the CSI sidecars from the Go
# module proxy (the two it does not serve are stand-ins: tests/e2e/sidecars) and the
# Kubeflow training operator v1.8.1, run on the host;
# images built here (a Debian base by mmdebstrap, our Dockerfile on it with
# buildah, the sidecars as images of their static binaries, a pause image) and
# imported into containerd.  No kube-proxy and no cluster DNS: the API service
# VIP (10.214.0.1:443) is an address of the cluster's own bridge, and the
# overlay runs minidfs on the host network at the node IP (10.213.0.1) with a
# hostAlias for its Service name.
#
# Its own everything, so it cannot disturb other work on the machine: state in
# /var/lib/hdfs-csi-e2e (kubelet --root-dir, containerd root, etcd data), runtime
# in /run/hdfs-csi-e2e (containerd state and socket, netns), cgroups under
# /hdfs-csi-e2e, bridge hcsie2e0, ports 2479/2480 (etcd), 443 on 10.214.0.1 only,
# 10350 (kubelet).  `down` stops it all by pid and unmounts only what lies
# below its own two directories.
#
# Environment: K8S_VERSION (default v1.34.4), HDFS_CSI_E2E_CACHE, HDFS_CSI_E2E_KEEP_STATE=1
# (down keeps /var/lib/hdfs-csi-e2e), HDFS_CSI_E2E_NO_INSTALL=1 (up without the driver).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
CACHE="${HDFS_CSI_E2E_CACHE:-$HOME/.cache/hdfs-csi-e2e}"
BIN="$CACHE/bin"
IMAGES="$CACHE/images"
STATE=/var/lib/hdfs-csi-e2e
RUN=/run/hdfs-csi-e2e
PKI="$STATE/pki"
KUBELET_DIR="$STATE/kubelet"
CTRD_SOCK="$RUN/containerd/containerd.sock"
BRIDGE=hcsie2e0
NODE_IP=10.213.0.1
POD_CIDR=10.213.0.0/24
API_IP=10.214.0.1
SERVICE_CIDR=10.214.0.0/24
NODE_NAME=hdfs-csi-e2e
OVERLAY="$REPO/deploy/overlays/e2e-local"
KUBECONFIG_FILE="$STATE/admin.kubeconfig"
LOGS="$CACHE/logs"
NICE=(nice -n 19)
export GOMAXPROCS="${GOMAXPROCS:-1}" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

DRIVER_IMAGE=ghcr.io/hdfs-csi/hdfs-csi:0.1.0
DRIVER_REBUILT=
BASE_IMAGE=localhost/hdfs-csi-e2e/debian-python:bookworm
PAUSE_IMAGE=localhost/hdfs-csi-e2e/pause:3.10
# image name : binary in $BIN : path of the binary in the image
SIDECAR_IMAGES=(
  "registry.k8s.io/sig-storage/csi-provisioner:v6.4.0 csi-provisioner /csi-provisioner"
  "registry.k8s.io/sig-storage/csi-resizer:v2.3.0 csi-resizer /csi-resizer"
  "localhost/hdfs-csi-e2e/csi-node-driver-registrar-standin:v2.17.0 csi-node-driver-registrar /csi-node-driver-registrar"
  "localhost/hdfs-csi-e2e/livenessprobe-standin:v2.20.0 livenessprobe /livenessprobe"
)
APT_PACKAGES=(containerd runc buildah mmdebstrap etcd-server containernetworking-plugins
              iproute2 openssl gcc libc6-dev util-linux)

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'e2e-cluster.sh: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

# -- packages from Debian -------------------------------------------------------------
install_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" = 0 ] && return 0
  say "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive "${NICE[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  command -v go >/dev/null || die "Go is needed to build Kubernetes (go 1.24 or newer)"
}

# -- build: Kubernetes from the Go module proxy ------------------------------------
build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
  local absent=0 b
  for b in "${want[@]}"; do [ -x "$BIN/$b" ] || absent=1; done
  [ "$absent" = 0 ] && [ "$(cat "$BIN/.k8s-version" 2>/dev/null)" = "$K8S_VERSION" ] && return 0
  say "building Kubernetes $K8S_VERSION (${want[*]}): long the first time"
  local mod="$CACHE/src/k8s" staging="v0.${K8S_VERSION#v1.}"
  mkdir -p "$mod" "$BIN"
  (
    cd "$mod"
    [ -f go.mod ] || go mod init hdfs-csi-e2e/k8s >/dev/null 2>&1
    local dir
    dir="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    [ -n "$dir" ] || die "k8s.io/kubernetes@$K8S_VERSION is not served"
    # The staging modules are separate modules: replace each with its v0.x release.
    local m
    for m in $(sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$dir/go.mod"); do
      go mod edit -replace "$m=$m@$staging"
    done
    go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
    local pkgs=() ldflags="-s -w"
    for b in "${want[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    local major minor
    major="${K8S_VERSION#v}"; major="${major%%.*}"
    minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
    for kv in "gitVersion=$K8S_VERSION" "gitMajor=$major" "gitMinor=$minor" \
              "gitTreeState=clean" "buildDate=1970-01-01T00:00:00Z"; do
      ldflags+=" -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
    done
    "${NICE[@]}" go build -p 1 -trimpath -ldflags "$ldflags" -o "$BIN/" "${pkgs[@]}"
  )
  echo "$K8S_VERSION" >"$BIN/.k8s-version"
}

# -- build: the CSI sidecars our manifests name -------------------------------------
# module path, version, main package, binary name (as the upstream images have it)
SIDECARS=(
  "github.com/kubernetes-csi/external-provisioner/v6 v6.4.0 ./cmd/csi-provisioner csi-provisioner"
  "github.com/kubernetes-csi/external-resizer/v2 v2.3.0 ./cmd/csi-resizer csi-resizer"
  # not a sidecar: the Kubeflow training operator, for the PyTorchJob test (run on the host)
  "github.com/kubeflow/training-operator v1.8.1 ./cmd/training-operator.v1 training-operator"
)
TRAINING_OPERATOR_SRC="$CACHE/src/training-operator-v1.8.1"
build_sidecars() {
  local line mod ver pkg name
  mkdir -p "$BIN" "$CACHE/src"
  for line in "${SIDECARS[@]}"; do
    read -r mod ver pkg name <<<"$line"
    [ "$(cat "$BIN/.$name-version" 2>/dev/null)" = "$ver" ] && [ -x "$BIN/$name" ] && continue
    say "building $name $ver from $mod"
    local dir src="$CACHE/src/$name-$ver"
    dir="$(go mod download -json "$mod@$ver" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    [ -n "$dir" ] || die "$mod@$ver is not served"
    rm -rf "$src"; cp -r "$dir" "$src"; chmod -R u+w "$src"
    (cd "$src" && "${NICE[@]}" go build -p 1 -trimpath -ldflags "-s -w -X main.version=$ver" \
        -o "$BIN/$name" "$pkg")
    echo "$ver" >"$BIN/.$name-version"
  done
  # node-driver-registrar and livenessprobe: not served by the proxy, our stand-ins.
  local sums
  sums="$(cat "$REPO"/tests/e2e/sidecars/go.* "$REPO"/tests/e2e/sidecars/*/main.go | sha256sum | cut -c1-16)"
  if [ "$(cat "$BIN/.standins" 2>/dev/null)" != "$sums" ]; then
    say "building the registrar and livenessprobe stand-ins (tests/e2e/sidecars)"
    (cd "$REPO/tests/e2e/sidecars" && "${NICE[@]}" go build -p 1 -trimpath -ldflags "-s -w" \
        -o "$BIN/" ./registrar ./livenessprobe)
    mv "$BIN/registrar" "$BIN/csi-node-driver-registrar"
    echo "$sums" >"$BIN/.standins"
  fi
}

# -- build: pause + images ---------------------------------------------------------------
build_pause() {
  [ -x "$BIN/pause" ] && return 0
  local dir
  dir="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  say "building pause from k8s.io/kubernetes/build/pause"
  "${NICE[@]}" gcc -Os -static -DVERSION="$K8S_VERSION" -o "$BIN/pause" "$dir/build/pause/linux/pause.c"
}

bah() { "${NICE[@]}" buildah --root "$CACHE/containers/storage" --runroot "$RUN/buildah" \
          --storage-driver vfs "$@"; }

# The image of one static binary: FROM scratch + the binary.
binary_image() {  # name, binary, path in image, [entrypoint args...]
  local name="$1" bin="$2" path="$3" ctr
  ctr="$(bah from scratch)"
  bah copy "$ctr" "$BIN/$bin" "$path" >/dev/null
  bah config --entrypoint "[\"$path\"]" --cmd '' "$ctr"
  bah commit -q --rm "$ctr" "$name" >/dev/null
}

image_archive() {  # name -> $IMAGES/<file>.tar (docker-archive, what ctr imports)
  local name="$1" file
  file="$IMAGES/$(echo "$name" | tr '/:' '__').tar"
  rm -f "$file"
  bah push -q "$name" "docker-archive:$file:$name" >/dev/null
  echo "$file"
}

build_images() {
  mkdir -p "$IMAGES" "$RUN/buildah"
  local stamp_src
  # The driver image is rebuilt when a file that goes into it changes: the blobs of
  # the index, the working tree's changes and untracked files (not the commit, so
  # a commit of tests, docs, manifests or this script does not rebuild it).
  local src=(-- . ':!tests' ':!deploy' ':!docs' ':!*.md' ':!scripts/e2e-cluster.sh')
  stamp_src="$( (git -C "$REPO" ls-files -s "${src[@]}"; git -C "$REPO" diff "${src[@]}";
      git -C "$REPO" ls-files -o --exclude-standard "${src[@]}") | sha256sum | cut -c1-16)"
  if [ ! -f "$IMAGES/debian-base.tar" ]; then
    say "Debian bookworm base (mmdebstrap)"
    "${NICE[@]}" mmdebstrap --quiet --variant=minbase \
      --include=passwd,python3,python3-venv,python-is-python3,ca-certificates bookworm \
      "$IMAGES/debian-base.tar.part.tar" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main"
    mv "$IMAGES/debian-base.tar.part.tar" "$IMAGES/debian-base.tar"
    rm -f "$IMAGES/.base"
  fi
  if [ ! -f "$IMAGES/.base" ]; then
    say "image $BASE_IMAGE"
    local ctr
    ctr="$(bah from scratch)"
    bah add "$ctr" "$IMAGES/debian-base.tar" / >/dev/null
    # python:*-slim has `python` and `pip` first on PATH; a venv gives the Debian
    # base the same (and pip works in it: Debian's Python is externally managed).
    bah run --isolation chroot --network host "$ctr" -- python3 -m venv /opt/python
    # The host's own extra CAs (a TLS-inspecting egress proxy, as on this
    # machine) go into the base, so apt and pip in the Dockerfile reach their
    # registries; pip is told to use the system bundle rather than its certifi.
    local crt
    for crt in /usr/local/share/ca-certificates/*.crt; do
      [ -f "$crt" ] && bah copy "$ctr" "$crt" /usr/local/share/ca-certificates/ >/dev/null
    done
    bah run --isolation chroot --network host "$ctr" -- update-ca-certificates >/dev/null
    bah config --env PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env LANG=C.UTF-8 --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt --cmd /bin/bash "$ctr"
    bah commit -q --rm "$ctr" "$BASE_IMAGE" >/dev/null
    touch "$IMAGES/.base"
    rm -f "$IMAGES/.driver"
  fi
  if [ "$(cat "$IMAGES/.driver" 2>/dev/null)" != "$stamp_src" ]; then
    say "image $DRIVER_IMAGE (Dockerfile, PYTHON_IMAGE=$BASE_IMAGE)"
    bah build -q --isolation chroot --network host --layers \
      --build-arg "PYTHON_IMAGE=$BASE_IMAGE" -t "$DRIVER_IMAGE" -f "$REPO/Dockerfile" "$REPO" >/dev/null
    image_archive "$DRIVER_IMAGE" >/dev/null
    echo "$stamp_src" >"$IMAGES/.driver"
    DRIVER_REBUILT=1
  fi
  if [ ! -f "$IMAGES/.sidecars" ] || [ "$BIN/csi-provisioner" -nt "$IMAGES/.sidecars" ] \
     || [ "$BIN/.standins" -nt "$IMAGES/.sidecars" ]; then
    local line name bin path
    for line in "${SIDECAR_IMAGES[@]}" "$PAUSE_IMAGE pause /pause"; do
      read -r name bin path <<<"$line"
      say "image $name"
      binary_image "$name" "$bin" "$path"
      image_archive "$name" >/dev/null
    done
    touch "$IMAGES/.sidecars"
  fi
}

build() {
  install_packages
  build_kubernetes
  build_sidecars
  build_pause
  build_images
}

# -- the cluster ---------------------------------------------------------------------------
k() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

pki() {
  [ -f "$PKI/ca.crt" ] && return 0
  say "certificates"
  mkdir -p "$PKI"; chmod 700 "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=hdfs-csi-e2e-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    cert() {  # name, subject, [subjectAltName]
      openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      local ext="extendedKeyUsage=clientAuth,serverAuth"
      [ -n "${3:-}" ] && ext="$ext
subjectAltName=$3"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile <(printf '%s\n' "$ext") -out "$1.crt" 2>/dev/null
      rm -f "$1.csr"
    }
    cert apiserver "/CN=kube-apiserver" \
      "IP:$API_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
    cert admin "/O=system:masters/CN=hdfs-csi-e2e-admin"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    cert controller-manager "/CN=system:kube-controller-manager"
    cert scheduler "/CN=system:kube-scheduler"
    cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
  )
  local who
  for who in admin controller-manager scheduler kubelet; do
    cat >"$STATE/$who.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {certificate-authority: $PKI/ca.crt, server: "https://$API_IP:443"}
users:
- name: $who
  user: {client-certificate: $PKI/$who.crt, client-key: $PKI/$who.key}
contexts:
- name: e2e
  context: {cluster: e2e, user: $who}
current-context: e2e
KC
  done
}

network_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/24" dev "$BRIDGE"
  ip addr replace "$API_IP/32" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  mkdir -p "$STATE/cni/net.d"
  cat >"$STATE/cni/net.d/10-hdfs-csi-e2e.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "hdfs-csi-e2e", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}]}
CNI
}

start() {  # name, command...: in the background, own session, pid in $RUN/pids
  local name="$1"; shift
  mkdir -p "$RUN/pids" "$LOGS"
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/pids/$name.pid"
}

running() { [ -f "$RUN/pids/$1.pid" ] && kill -0 "$(cat "$RUN/pids/$1.pid")" 2>/dev/null; }

wait_for() {  # what, seconds, command...
  local what="$1" secs="$2" i; shift 2
  for ((i = 0; i < secs; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "$what did not come up in ${secs}s (logs: $LOGS)"
}

containerd_config() {
  mkdir -p "$RUN/containerd" "$STATE/containerd"
  cat >"$STATE/containerd.toml" <<TOML
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  netns_mounts_under_state_dir = true
  # This machine's root lacks CAP_SYS_RESOURCE (a container itself): the kubelet's
  # oom_score_adj of -998 for a sandbox fails in runc's nsexec ("can't get final
  # child's PID from pipe: EOF"); containerd then keeps it at its own, 0.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd-opt"
TOML
}

kubelet_config() {
  cat >"$STATE/kubelet.yaml" <<KY
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (in maintenance since 1.31; kubelet 1.35+ refuses it by default).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /hdfs-csi-e2e
containerRuntimeEndpoint: unix://$CTRD_SOCK
address: $NODE_IP
port: 10350
healthzBindAddress: 127.0.0.1
healthzPort: 10348
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
failSwapOn: false
podCIDR: $POD_CIDR
maxPods: 60
serializeImagePulls: false
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%"}
# One shared machine: no kubelet-reserved or enforced allocatable beyond pods.
enforceNodeAllocatable: [pods]
volumeStatsAggPeriod: 10s
KY
}

# kubelet's --cgroup-root must exist in every hierarchy (a new cpuset group
# starts with no CPUs and no memory nodes: it gets the root's).
cgroup_root() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h/hdfs-csi-e2e"
    if [ -f "$h/cpuset.cpus" ] && [ -z "$(cat "$h/hdfs-csi-e2e/cpuset.cpus")" ]; then
      cat "$h/cpuset.cpus" >"$h/hdfs-csi-e2e/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h/hdfs-csi-e2e/cpuset.mems"
    fi
  done
}

up() {
  local t0; t0="$(now)"
  build
  local t_build; t_build="$(now)"
  mkdir -p "$STATE" "$RUN" "$KUBELET_DIR" "$LOGS"
  # Bidirectional mount propagation (the node plugin's FUSE mounts reaching pods)
  # needs the kubelet directory on a shared mount; / is private here.
  if ! findmnt -rno TARGET "$STATE" >/dev/null; then
    mount --bind "$STATE" "$STATE"
  fi
  mount --make-rshared "$STATE"
  pki
  network_up
  cgroup_root
  # The driver's socket directory is the base's /var/lib/kubelet/plugins/<driver>
  # (see deploy/overlays/e2e-local/node-patch.yaml); note what down must remove.
  [ -e /var/lib/kubelet ] || echo /var/lib/kubelet >"$STATE/created-paths"

  running etcd || start etcd etcd --name hdfs-csi-e2e --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2479 --advertise-client-urls http://127.0.0.1:2479 \
    --listen-peer-urls http://127.0.0.1:2480 --initial-advertise-peer-urls http://127.0.0.1:2480 \
    --initial-cluster hdfs-csi-e2e=http://127.0.0.1:2480 --listen-metrics-urls ''
  wait_for etcd 60 curl -fsS http://127.0.0.1:2479/health

  running kube-apiserver || start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2479 \
    --bind-address "$API_IP" --secure-port 443 --advertise-address "$API_IP" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --v=1
  wait_for kube-apiserver 120 "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" get --raw /readyz

  running kube-controller-manager || start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10357 \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials --cluster-signing-cert-file "$PKI/ca.crt" \
    --cluster-signing-key-file "$PKI/ca.key" --service-cluster-ip-range "$SERVICE_CIDR" \
    --controllers '*,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' \
    --leader-elect=false --v=1
  running kube-scheduler || start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10359 --leader-elect=false --v=1

  containerd_config
  running containerd || start containerd containerd --config "$STATE/containerd.toml"
  wait_for containerd 60 ctr --address "$CTRD_SOCK" version
  say "importing images into containerd"
  local f
  for f in "$IMAGES"/*.tar; do
    [ "$(basename "$f")" = debian-base.tar ] && continue
    "${NICE[@]}" ctr --address "$CTRD_SOCK" -n k8s.io images import --no-unpack=false "$f" >/dev/null
  done

  kubelet_config
  running kubelet || start kubelet "$BIN/kubelet" --config "$STATE/kubelet.yaml" \
    --kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$KUBELET_DIR" \
    --node-ip "$NODE_IP" --hostname-override "$NODE_NAME" --v=2
  wait_for "the node" 180 k wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
  training_operator_up
  local t_cluster; t_cluster="$(now)"

  if [ -z "${HDFS_CSI_E2E_NO_INSTALL:-}" ]; then
    say "kubectl apply -k deploy/overlays/e2e-local"
    k apply -k "$OVERLAY" >/dev/null
    if [ -n "${DRIVER_REBUILT:-}" ]; then  # same tag, new image: running pods keep the old one
      k -n hdfs-csi rollout restart deployment/hdfs-csi-controller daemonset/hdfs-csi-node >/dev/null
    fi
    k -n hdfs-csi rollout status deployment/minidfs --timeout=5m
    k -n hdfs-csi rollout status deployment/hdfs-csi-controller --timeout=5m
    k -n hdfs-csi rollout status daemonset/hdfs-csi-node --timeout=5m
  fi
  local t_end; t_end="$(now)"
  say "up: build/check $((t_build - t0))s, cluster $((t_cluster - t_build))s, hdfs-csi $((t_end - t_cluster))s, total $((t_end - t0))s"
  env_lines
}

# The Kubeflow training operator v1.8.1 (PyTorchJob only), on the host with the admin
# kubeconfig, as the control plane runs.  Its validating webhook is registered empty:
# the API server would reach it through a Service, and there is no kube-proxy here;
# the operator still makes its certificates (cert-controller needs the Secret and the
# configuration; the certificates go to its fixed /tmp/k8s-webhook-server, which down
# removes).  Workers'
# init container waits for the master's DNS name by nslookup; there is no cluster
# DNS here, so the template says so and goes on (the example does not rendezvous).
training_operator_up() {
  k apply --server-side -f "$TRAINING_OPERATOR_SRC/manifests/base/crds/kubeflow.org_pytorchjobs.yaml" >/dev/null
  k get namespace kubeflow >/dev/null 2>&1 || k create namespace kubeflow >/dev/null
  k -n kubeflow get secret training-operator-webhook-cert >/dev/null 2>&1 ||
    k -n kubeflow create secret generic training-operator-webhook-cert >/dev/null
  # cert-controller is ready only once it has put its CA into this configuration;
  # with no webhooks in it, the API server calls none
  k apply -f - >/dev/null <<'YAML'
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: validator.training-operator.kubeflow.org}
webhooks: []
YAML
  [ -e /tmp/k8s-webhook-server ] || echo /tmp/k8s-webhook-server >"$STATE/created-webhook-dir"
  cat >"$STATE/pytorch-init-container.yaml" <<YAML
- name: init-pytorch
  image: $DRIVER_IMAGE
  imagePullPolicy: IfNotPresent
  resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 64Mi}}
  securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
  command: ['sh', '-c', 'echo "no cluster DNS here: not waiting for {{.MasterAddr}}"']
YAML
  running training-operator || start training-operator env KUBECONFIG="$KUBECONFIG_FILE" \
    "$BIN/training-operator" --enable-scheme=pytorchjob \
    --metrics-bind-address 127.0.0.1:10380 --health-probe-bind-address 127.0.0.1:10381 \
    --webhook-server-port 10382 \
    --pytorch-init-container-template-file "$STATE/pytorch-init-container.yaml"
  # In a pod the kubelet would project the Secret cert-controller fills into its
  # certificate directory; on the host, this does (the certificates last ten years).
  wait_for "the training operator's certificates" 60 webhook_certs_projected
  wait_for "the training operator" 60 curl -fsS http://127.0.0.1:10381/readyz
}

webhook_certs_projected() {
  local dir=/tmp/k8s-webhook-server/serving-certs key
  [ -s "$dir/tls.crt" ] && return 0
  k -n kubeflow get secret training-operator-webhook-cert -o jsonpath='{.data.tls\.key}' \
    2>/dev/null | grep -q . || return 1
  mkdir -p "$dir"; chmod 700 /tmp/k8s-webhook-server "$dir"
  for key in ca.crt tls.key tls.crt; do  # tls.crt last: its presence means all are there
    k -n kubeflow get secret training-operator-webhook-cert -o jsonpath="{.data.${key/./\\.}}" |
      base64 -d >"$dir/.$key" && mv "$dir/.$key" "$dir/$key"
  done
}

env_lines() {
  cat <<ENV
export KUBECONFIG=$KUBECONFIG_FILE
export KUBECTL=$BIN/kubectl
# e2e tier: ./scripts/test.sh -m e2e    (down: scripts/e2e-cluster.sh down)
ENV
}

# -- down: stop by pid, unmount below our own directories, delete the state --------------
stop_pid() {  # name
  local f="$RUN/pids/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

our_mounts() {  # deepest first
  findmnt -rno TARGET | awk -v a="$STATE" -v b="$RUN" \
    'index($0, a) == 1 || index($0, b) == 1 { print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-
}

# Processes started by our containerd (shims and what they run), found by the
# socket address on their command line: only ours carry it.
our_shims() {
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "-address $CTRD_SOCK "; then
      basename "$p"
    fi
  done
  return 0   # none found is an answer, not a failure (set -e, pipefail)
}

down() {
  stop_pid kubelet
  if running containerd; then
    local c
    for c in $(ctr --address "$CTRD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CTRD_SOCK" -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
    done
    sleep 1
    for c in $(ctr --address "$CTRD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CTRD_SOCK" -n k8s.io tasks rm -f "$c" >/dev/null 2>&1 || true
    done
  fi
  stop_pid containerd
  local pid
  for pid in $(our_shims); do kill -KILL "$pid" 2>/dev/null || true; done
  stop_pid training-operator
  if [ -f "$STATE/created-webhook-dir" ]; then rm -rf /tmp/k8s-webhook-server; fi
  stop_pid kube-scheduler
  stop_pid kube-controller-manager
  stop_pid kube-apiserver
  stop_pid etcd
  # The FUSE mounts' keepers, which left the node plugin's container for their
  # own cgroup (--mount-cgroup in the overlay): SIGTERM unmounts, then SIGKILL.
  local pids
  pids="$(cat /sys/fs/cgroup/*/hdfs-csi-e2e/hdfs-csi-mounts/cgroup.procs 2>/dev/null | sort -u || true)"
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    sleep 2
    pids="$(cat /sys/fs/cgroup/*/hdfs-csi-e2e/hdfs-csi-mounts/cgroup.procs 2>/dev/null | sort -u || true)"
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; fi
  fi
  local m
  while read -r m; do
    if [ -n "$m" ]; then umount -l "$m" 2>/dev/null || true; fi
  done < <(our_mounts)
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  # kubelet's cgroups (cgroupRoot /hdfs-csi-e2e), deepest first
  local d
  for d in /sys/fs/cgroup/*/hdfs-csi-e2e; do
    if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
  done
  rm -f /var/lib/cni/results/hdfs-csi-e2e-* 2>/dev/null || true
  rm -rf /var/lib/kubelet/plugins/hdfs.csi.hdfs-csi.io
  if [ -f "$STATE/created-paths" ]; then
    rmdir /var/lib/kubelet/plugins /var/lib/kubelet 2>/dev/null || true
  fi
  rm -rf "$RUN"
  [ -n "${HDFS_CSI_E2E_KEEP_STATE:-}" ] || rm -rf "$STATE"
  status
}

status() {
  local n name
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler training-operator \
              containerd kubelet; do
    running "$name" && echo "running: $name (pid $(cat "$RUN/pids/$name.pid"))"
  done
  n="$(our_mounts | wc -l)"; echo "mounts below $STATE and $RUN: $n"
  n="$(our_shims | wc -l)"; echo "containerd shims of this cluster: $n"
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE: present" || echo "bridge $BRIDGE: absent"
  return 0
}

# One compound command, read whole before it runs: editing this file while an
# `up` runs cannot make bash read on into the changed text.
{
  case "${1:-}" in
    build) build ;;
    build-k8s) build_kubernetes ;;
    build-sidecars) build_sidecars ;;
    build-images) install_packages; build_pause; build_images ;;
    up) up ;;
    down) down ;;
    status) status ;;
    env) env_lines ;;
    *) die "usage: $0 build|up|down|status|env" ;;
  esac
  exit
}
