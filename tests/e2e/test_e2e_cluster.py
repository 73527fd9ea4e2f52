"""End-to-end on a real Kubernetes cluster: install, provision, mount, read, write, clean up.

Runs against whatever cluster ``kubectl`` reaches (``KUBECONFIG``), e.g. the
minikube of deploy/minikube/up.sh, and is skipped with the reason when there
is none.  Marked ``e2e``: never part of the default run.

What it does, as a user would:

1. installs hdfs-csi with the minikube overlay (driver + in-cluster minidfs),
   unless it is already installed with minidfs; with ``HDFS_CSI_E2E_IMAGE``
   the driver image is overridden (an image you loaded into the cluster);
2. dynamic volume: a StorageClass, a ReadWriteMany claim, a pod that writes
   random bytes and reads them back, a second pod that reads them again, and
   the same bytes read from HDFS itself (in the minidfs pod);
3. static volume: a file put into HDFS, a ReadOnlyMany PV + claim, a pod that
   reads it and cannot write;
4. deletes what it created (the HDFS directory of the dynamic volume too,
   ``onDelete: delete``), and uninstalls hdfs-csi if it installed it
   (``HDFS_CSI_E2E_KEEP=1`` keeps the install).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
OVERLAY = REPO / "deploy" / "overlays" / "minikube"
DRIVER = "hdfs.csi.hdfs-csi.io"
NAMESPACE = "hdfs-csi"
DEFAULT_IMAGE = "ghcr.io/hdfs-csi/hdfs-csi:0.1.0"
HDFS_URI = f"hdfs://minidfs.{NAMESPACE}.svc.cluster.local:8020"
#: Under the overlay's HDFS_BASE_PATH: the driver refuses a basePath outside its allowed roots.
E2E_BASE = "/k8s/volumes/e2e"


# -- kubectl ----------------------------------------------------------------------------------
def _kubectl_binary() -> str | None:
    return os.environ.get("KUBECTL") or shutil.which("kubectl")


def kubectl(*args: str, input: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    binary = _kubectl_binary()
    assert binary
    out = subprocess.run([binary, *args], check=False, input=input, capture_output=True,
                         text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({out.returncode}):\n"
                             f"{out.stdout}\n{out.stderr}")
    return out


def apply(objs: list[dict[str, Any]]) -> None:
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))


def get(kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    out = kubectl(*args, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def wait_phase(kind: str, name: str, namespace: str, phase: str, timeout: int) -> str:
    """Wait until .status.phase is ``phase`` (or a terminal phase); returns the last phase."""
    deadline = time.monotonic() + timeout
    current = ""
    while time.monotonic() < deadline:
        obj = get(kind, name, namespace)
        current = ((obj or {}).get("status") or {}).get("phase", "")
        if current == phase or (kind == "pod" and current in ("Succeeded", "Failed")):
            return current
        time.sleep(2)
    return current


def no_cluster_reason() -> str | None:
    if _kubectl_binary() is None:
        return "no kubectl binary on PATH (or $KUBECTL)"
    if not os.environ.get("KUBECONFIG") and not (Path.home() / ".kube" / "config").exists():
        return "no KUBECONFIG and no ~/.kube/config: no cluster to test against"
    try:
        out = kubectl("version", "-o", "json", "--request-timeout=10s", check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return "the cluster in KUBECONFIG did not answer within 30 s"
    if out.returncode != 0 or "serverVersion" not in out.stdout:
        last = (out.stderr.strip().splitlines() or ["no server version"])[-1]
        return f"the cluster in KUBECONFIG is not reachable: {last}"
    return None


# -- HDFS, seen from inside the minidfs pod -----------------------------------------------------
HDFS_SCRIPT = textwrap.dedent("""\
    import hashlib, os, sys
    import hdfs_client
    from hdfs_client.errors import NotFound
    c = hdfs_client.connect("hdfs://" + os.environ["POD_IP"] + ":8020")
    op, path = sys.argv[1], sys.argv[2]
    if op == "sha256":
        try:
            n = c.get_status(path).length
        except NotFound:
            print("MISSING"); sys.exit(0)
        print(hashlib.sha256(c.open_reader(path).read_range(0, n) if n else b"").hexdigest())
    elif op == "exists":
        try:
            c.get_status(path); print("yes")
        except NotFound:
            print("no")
    elif op == "put":
        data = bytes.fromhex(sys.argv[3])
        w = c.create(path, overwrite=True, create_parent=True)
        w.write(data); w.close()
        c.set_permission(os.path.dirname(path), 0o755)
        print("ok")
""")


def hdfs(*args: str) -> str:
    out = kubectl("-n", NAMESPACE, "exec", "deployment/minidfs", "--", "python", "-c",
                  HDFS_SCRIPT, *args, timeout=120)
    return out.stdout.strip()


# -- install ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def installed() -> Iterator[str]:
    reason = no_cluster_reason()
    if reason:
        pytest.skip(reason)
    image = os.environ.get("HDFS_CSI_E2E_IMAGE", DEFAULT_IMAGE)
    preexisting = get("csidriver", DRIVER) is not None
    if preexisting and get("deployment", "minidfs", NAMESPACE) is None:
        pytest.skip("hdfs-csi is already installed without the in-cluster minidfs; the e2e "
                    "test only uses its own install or the minikube overlay's")
    workdir = Path(tempfile.mkdtemp(prefix="hdfs-csi-e2e-"))
    if not preexisting:
        name, _, tag = image.rpartition(":")
        (workdir / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [str(OVERLAY)],
            "images": [{"name": "ghcr.io/hdfs-csi/hdfs-csi", "newName": name, "newTag": tag}],
        }))
        kubectl("apply", "-k", str(workdir), timeout=300)
    try:
        for workload in ("deployment/minidfs", "deployment/hdfs-csi-controller",
                         "daemonset/hdfs-csi-node"):
            kubectl("-n", NAMESPACE, "rollout", "status", workload, "--timeout=300s",
                    timeout=330)
        yield image
    finally:
        if not preexisting and not os.environ.get("HDFS_CSI_E2E_KEEP"):
            kubectl("delete", "-k", str(workdir), "--ignore-not-found", "--wait=true",
                    check=False, timeout=600)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def namespace(installed: str) -> Iterator[str]:
    name = f"hdfs-csi-e2e-{secrets.token_hex(3)}"
    apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=true", "--ignore-not-found",
                check=False, timeout=600)


def pod(name: str, namespace: str, image: str, script: str, claim: str,
        read_only: bool = False) -> dict[str, Any]:
    """A restricted-profile pod running ``script`` with the claim at /data."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                              "limits": {"memory": "256Mi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data",
                                  "readOnly": read_only}],
            }],
            "volumes": [{"name": "data", "persistentVolumeClaim": {
                "claimName": claim, "readOnly": read_only}}],
        },
    }


def run_pod(manifest: dict[str, Any], timeout: int = 300) -> str:
    """Start the pod, wait for it to finish, return its log (fails if it failed)."""
    apply([manifest])
    ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    phase = wait_phase("pod", name, ns, "Succeeded", timeout)
    logs = kubectl("-n", ns, "logs", name, check=False).stdout
    if phase != "Succeeded":
        events = kubectl("-n", ns, "describe", "pod", name, check=False).stdout
        node = kubectl("-n", NAMESPACE, "logs", "daemonset/hdfs-csi-node", "-c",
                       "hdfs-csi-driver", "--tail=40", check=False).stdout
        pytest.fail(f"pod {name} ended {phase or 'nowhere'}\nlogs:\n{logs}\n{events}\n"
                    f"node plugin:\n{node}")
    return logs


def pseudo_random(seed: str, n: int) -> bytes:
    """n bytes from a seed: SHA-256 in counter mode (same bytes on any Python)."""
    return b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest()
                    for i in range(n // 32 + 1))[:n]


#: The same function as one line of Python for the pod's ``python -c``;
#: test_pod_side_generator_matches checks that the two agree.
PSEUDO_RANDOM_SRC = ("import hashlib; pseudo_random = lambda seed, n: b\"\".join("
                     "hashlib.sha256(f\"{seed}:{i}\".encode()).digest() "
                     "for i in range(n // 32 + 1))[:n]")


# -- the tests -------------------------------------------------------------------------------
def test_dynamic_volume_write_read_and_delete(installed: str, namespace: str) -> None:
    image = installed
    seed = secrets.token_hex(8)
    payload = pseudo_random(seed, 256 * 1024 + 17)  # more than one FUSE request
    digest = hashlib.sha256(payload).hexdigest()
    sc = f"{namespace}-sc"
    apply([{
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": sc}, "provisioner": DRIVER,
        "parameters": {"hdfsUri": HDFS_URI, "basePath": E2E_BASE, "mode": "0777",
                       "onDelete": "delete"},
        "reclaimPolicy": "Delete", "allowVolumeExpansion": True,
    }, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": namespace},
        "spec": {"storageClassName": sc, "accessModes": ["ReadWriteMany"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    }])
    try:
        assert wait_phase("pvc", "data", namespace, "Bound", 180) == "Bound"
        pv = get("pvc", "data", namespace)["spec"]["volumeName"]  # type: ignore[index]

        # The pod makes the same bytes from the seed (a 256 KiB literal would
        # exceed the kernel's 128 KiB limit on one command-line argument).
        write = (f"python -c '{PSEUDO_RANDOM_SRC}; import sys; "
                 f"sys.stdout.buffer.write(pseudo_random(\"{seed}\", {len(payload)}))' "
                 "> /data/payload.bin && sync && sha256sum /data/payload.bin")
        logs = run_pod(pod("writer", namespace, image, write, "data"))
        assert digest in logs

        # A new pod (a new publish of the same volume) sees the same bytes.
        logs = run_pod(pod("reader", namespace, image, "sha256sum /data/payload.bin", "data",
                           read_only=True))
        assert digest in logs

        # And so does HDFS itself, at <basePath>/<pv name>.
        assert hdfs("sha256", f"{E2E_BASE}/{pv}/payload.bin") == digest

        kubectl("-n", namespace, "delete", "pod", "writer", "reader", "--wait=true")
        kubectl("-n", namespace, "delete", "pvc", "data", "--wait=true")
        deadline = time.monotonic() + 180
        while get("pv", pv) is not None and time.monotonic() < deadline:
            time.sleep(2)
        assert get("pv", pv) is None, f"PV {pv} was not deleted"
        assert hdfs("exists", f"{E2E_BASE}/{pv}") == "no", "onDelete: delete left the directory"
    finally:
        kubectl("delete", "storageclass", sc, "--ignore-not-found", check=False)


def test_static_read_only_dataset(installed: str, namespace: str) -> None:
    image = installed
    payload = secrets.token_bytes(4096)
    digest = hashlib.sha256(payload).hexdigest()
    dataset = f"/e2e-datasets/{namespace}"
    assert hdfs("put", f"{dataset}/part-0000.bin", payload.hex()) == "ok"
    pv_name = f"{namespace}-dataset"
    apply([{
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
            "csi": {"driver": DRIVER, "volumeHandle": pv_name, "readOnly": True,
                    "volumeAttributes": {"hdfsUri": HDFS_URI, "path": dataset,
                                         "metadataTtl": "60s"}},
        },
    }, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "dataset", "namespace": namespace},
        "spec": {"storageClassName": "", "volumeName": pv_name,
                 "accessModes": ["ReadOnlyMany"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    }])
    try:
        assert wait_phase("pvc", "dataset", namespace, "Bound", 120) == "Bound"
        script = ("sha256sum /data/part-0000.bin && "
                  "if touch /data/new 2>/dev/null; then echo WRITABLE; else echo READ-ONLY; fi")
        logs = run_pod(pod("dataset-reader", namespace, image, script, "dataset",
                           read_only=True))
        assert digest in logs
        assert "READ-ONLY" in logs and "WRITABLE" not in logs
        assert hdfs("exists", f"{dataset}/new") == "no"
    finally:
        kubectl("-n", namespace, "delete", "pod", "dataset-reader", "--ignore-not-found",
                "--wait=true", check=False, timeout=300)
        kubectl("-n", namespace, "delete", "pvc", "dataset", "--ignore-not-found",
                "--wait=true", check=False, timeout=300)
        kubectl("delete", "pv", pv_name, "--ignore-not-found", check=False)


def test_skip_reason_is_specific(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without kubectl the reason says so (runs even where there is no cluster)."""
    monkeypatch.setenv("KUBECTL", "")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert no_cluster_reason() == "no kubectl binary on PATH (or $KUBECTL)"


def test_pod_side_generator_matches() -> None:
    """The one-liner the writer pod runs makes exactly the bytes we expect."""
    import sys

    script = (f"{PSEUDO_RANDOM_SRC}; import sys; "
              "sys.stdout.buffer.write(pseudo_random('s33d', 100000))")
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    assert out.stdout == pseudo_random("s33d", 100000)
