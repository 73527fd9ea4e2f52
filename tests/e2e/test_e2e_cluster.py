"""End-to-end on a real Kubernetes cluster: install, provision, mount, read, write, clean up.

Runs against whatever cluster ``kubectl`` reaches (``KUBECONFIG``), e.g. the
local cluster of ``scripts/e2e-cluster.sh up`` (which installs
deploy/overlays/e2e-local) or the minikube of deploy/minikube/up.sh, and is
skipped with the reason when there is none.  Marked ``e2e``: never part of the
default run.

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
   (``HDFS_CSI_E2E_KEEP=1`` keeps the install);
5. two pods reading one static volume at once through one staged mount,
   expansion through the external-resizer (the HDFS quota follows), an inline
   ephemeral volume, the plain Job and StatefulSet a PyTorchJob and a Notebook
   controller would create, volume stats in the kubelet's metrics, the node
   plugin restarted under a reader, and, last, no ``forbidden`` in any sidecar
   log (RBAC).

``HDFS_CSI_E2E_OVERLAY`` picks the overlay it installs when hdfs-csi is not
installed yet (default deploy/overlays/minikube).
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
OVERLAY = Path(os.environ.get("HDFS_CSI_E2E_OVERLAY")
               or REPO / "deploy" / "overlays" / "minikube").resolve()
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
    elif op == "quota":
        print(c.content_summary(path).space_quota)
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


def pod(name: str, namespace: str, image: str, script: str, claim: str | None,
        read_only: bool = False, volume: dict[str, Any] | None = None) -> dict[str, Any]:
    """A restricted-profile pod running ``script`` with the claim (or ``volume``) at /data."""
    if volume is None:
        volume = {"persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}
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
            "volumes": [{"name": "data", **volume}],
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


# -- more of the issue-17 flow: shared static mounts, expansion, inline, workloads --------------
def wait_until(what: str, predicate: Any, timeout: float, every: float = 2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def node_plugin_log(tail: int = 400) -> str:
    return kubectl("-n", NAMESPACE, "logs", "daemonset/hdfs-csi-node", "-c", "hdfs-csi-driver",
                   f"--tail={tail}", check=False).stdout


def static_dataset(namespace: str, payload: bytes, name: str = "dataset") -> str:
    """``payload`` as part-0000.bin in a fresh HDFS directory, as a bound ROX claim ``name``."""
    dataset = f"/e2e-datasets/{namespace}-{name}"
    # one argv of hex is at most 128 KiB: put larger payloads in pieces
    assert len(payload) <= 60_000
    assert hdfs("put", f"{dataset}/part-0000.bin", payload.hex()) == "ok"
    pv_name = f"{namespace}-{name}"
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
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"storageClassName": "", "volumeName": pv_name,
                 "accessModes": ["ReadOnlyMany"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    }])
    assert wait_phase("pvc", name, namespace, "Bound", 120) == "Bound"
    return pv_name


def drop_static(namespace: str, pv_name: str, name: str = "dataset") -> None:
    kubectl("-n", namespace, "delete", "pods", "--all", "--wait=true", check=False, timeout=300)
    kubectl("-n", namespace, "delete", "pvc", name, "--ignore-not-found", "--wait=true",
            check=False, timeout=300)
    kubectl("delete", "pv", pv_name, "--ignore-not-found", check=False)


def dynamic_claim(namespace: str, size: str = "1Gi") -> str:
    """A StorageClass of this namespace and a bound RWX claim ``data`` from it; returns the SC."""
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
                 "resources": {"requests": {"storage": size}}},
    }])
    assert wait_phase("pvc", "data", namespace, "Bound", 180) == "Bound"
    return sc


def drop_dynamic(namespace: str, sc: str) -> None:
    kubectl("-n", namespace, "delete", "pods", "--all", "--wait=true", check=False, timeout=300)
    kubectl("-n", namespace, "delete", "pvc", "data", "--ignore-not-found", "--wait=true",
            check=False, timeout=300)
    kubectl("delete", "storageclass", sc, "--ignore-not-found", check=False)


def test_static_dataset_two_pods_share_one_staged_mount(installed: str, namespace: str) -> None:
    payload = secrets.token_bytes(50_000)
    digest = hashlib.sha256(payload).hexdigest()
    pv_name = static_dataset(namespace, payload)
    try:
        script = ("sha256sum /data/part-0000.bin && sleep 20 && sha256sum /data/part-0000.bin && "
                  "if touch /data/new 2>/dev/null; then echo WRITABLE; else echo READ-ONLY; fi")
        for name in ("reader-a", "reader-b"):
            apply([pod(name, namespace, installed, script, "dataset", read_only=True)])
        spans = []
        for name in ("reader-a", "reader-b"):
            assert wait_phase("pod", name, namespace, "Succeeded", 300) == "Succeeded", \
                kubectl("-n", namespace, "describe", "pod", name, check=False).stdout
            logs = kubectl("-n", namespace, "logs", name).stdout
            assert logs.count(digest) == 2 and "READ-ONLY" in logs and "WRITABLE" not in logs
            state = get("pod", name, namespace)["status"]["containerStatuses"][0]  # type: ignore[index]
            term = state["state"]["terminated"]
            spans.append((term["startedAt"], term["finishedAt"]))
        # both ran at the same time (RFC 3339 UTC strings compare as times)
        assert max(s for s, _ in spans) < min(f for _, f in spans), spans
        # one staged FUSE mount served both publishes
        staged = [ln for ln in node_plugin_log().splitlines()
                  if ": staged volume " in ln and pv_name in ln]  # not "unstaged"
        assert len(staged) == 1, "\n".join(staged) or node_plugin_log(60)
        assert hdfs("exists", f"/e2e-datasets/{namespace}-dataset/new") == "no"
    finally:
        drop_static(namespace, pv_name)


def test_expansion_raises_the_hdfs_quota(installed: str, namespace: str) -> None:
    sc = dynamic_claim(namespace, "1Gi")
    try:
        pv = get("pvc", "data", namespace)["spec"]["volumeName"]  # type: ignore[index]
        before = int(hdfs("quota", f"{E2E_BASE}/{pv}"))
        assert before > 0, f"no space quota on {E2E_BASE}/{pv}"
        kubectl("-n", namespace, "patch", "pvc", "data", "--type=merge",
                "-p", '{"spec": {"resources": {"requests": {"storage": "2Gi"}}}}')
        wait_until("the claim's capacity to read 2Gi", lambda: (
            (get("pvc", "data", namespace) or {}).get("status", {}).get("capacity", {})
            .get("storage") == "2Gi"), 180)
        after = int(hdfs("quota", f"{E2E_BASE}/{pv}"))
        assert after == 2 * before, (before, after)
        pv_obj = get("pv", pv)
        assert pv_obj["spec"]["capacity"]["storage"] == "2Gi"  # type: ignore[index]
    finally:
        drop_dynamic(namespace, sc)


def test_inline_ephemeral_volume(installed: str, namespace: str) -> None:
    payload = secrets.token_bytes(30_000)
    digest = hashlib.sha256(payload).hexdigest()
    dataset = f"/e2e-datasets/{namespace}-inline"
    assert hdfs("put", f"{dataset}/part-0000.bin", payload.hex()) == "ok"
    apply([{"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "hdfs-user", "namespace": namespace},
            "stringData": {"user": "e2e"}}])
    volume = {"csi": {"driver": DRIVER, "readOnly": True,
                      "volumeAttributes": {"hdfsUri": HDFS_URI, "path": dataset,
                                           "metadataTtl": "60s"},
                      "nodePublishSecretRef": {"name": "hdfs-user"}}}
    script = ("sha256sum /data/part-0000.bin && "
              "if touch /data/new 2>/dev/null; then echo WRITABLE; else echo READ-ONLY; fi")
    logs = run_pod(pod("inline", namespace, installed, script, None, read_only=True,
                       volume=volume))
    assert digest in logs and "READ-ONLY" in logs
    kubectl("-n", namespace, "delete", "pod", "inline", "--wait=true")


def pytorchjob_from_the_example(namespace: str, image: str, script: str) -> dict[str, Any]:
    """deploy/examples/pytorchjob.yaml as it is, but for what this cluster lacks.

    Kept: kind, replica types and counts, restart policies, container name,
    the dataset claim ``imagenet`` read-only at /data, the shared-memory volume.
    Changed: the namespace; the image (ours: this machine has no registry for
    pytorch/pytorch) and its command (the file's digest instead of the script
    that needs torch); requests that fit a 2-core node beside the others; the
    image is run as the restricted profile wants.
    """
    docs = list(yaml.safe_load_all((REPO / "deploy/examples/pytorchjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "PyTorchJob")
    job["metadata"]["namespace"] = namespace
    for spec in job["spec"]["pytorchReplicaSpecs"].values():
        pod_spec = spec["template"]["spec"]
        c = pod_spec["containers"][0]
        assert c["name"] == "pytorch", c["name"]
        assert {"name": "dataset", "mountPath": "/data", "readOnly": True} in c["volumeMounts"]
        c.update(image=image, imagePullPolicy="IfNotPresent", command=["sh", "-c", script],
                 resources={"requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "256Mi"}},
                 securityContext={"allowPrivilegeEscalation": False,
                                  "capabilities": {"drop": ["ALL"]}})
        c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "scripts"]
        pod_spec["volumes"] = [v for v in pod_spec["volumes"] if v["name"] != "scripts"]
        pod_spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": 10001,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    return job


def test_pytorchjob_of_the_example_reads_the_dataset(installed: str, namespace: str) -> None:
    """The example PyTorchJob, run by the real Kubeflow training operator (v1.8.1,
    which scripts/e2e-cluster.sh builds and starts): a master and two workers,
    each reading the dataset through the one staged mount of the node."""
    if get("crd", "pytorchjobs.kubeflow.org") is None:
        pytest.skip("no Kubeflow training operator in this cluster (CRD "
                    "pytorchjobs.kubeflow.org absent); scripts/e2e-cluster.sh installs one")
    payload = secrets.token_bytes(40_000)
    digest = hashlib.sha256(payload).hexdigest()
    pv_name = static_dataset(namespace, payload, name="imagenet")
    try:
        # RANK and WORLD_SIZE come from the operator: the pods are its own
        script = 'echo "rank $RANK of $WORLD_SIZE"; sha256sum /data/part-0000.bin'
        apply([pytorchjob_from_the_example(namespace, installed, script)])
        name = "dataset-epoch"

        def finished() -> str | None:
            job = get("pytorchjob", name, namespace) or {}
            for cond in job.get("status", {}).get("conditions", []):
                if cond["status"] == "True" and cond["type"] in ("Succeeded", "Failed"):
                    return str(cond["type"])
            return None
        state = wait_until("the PyTorchJob to finish", finished, 300, 3)
        logs = kubectl("-n", namespace, "logs", "-l", "training.kubeflow.org/job-name=" + name,
                       "--tail=-1", "--prefix", check=False).stdout
        assert state == "Succeeded", f"{state}\n{logs}\n" + kubectl(
            "-n", namespace, "describe", "pytorchjob", name, check=False).stdout
        assert logs.count(digest) == 3, logs
        assert sorted(ln.split("rank ")[1] for ln in logs.splitlines() if "rank " in ln) == \
            ["0 of 3", "1 of 3", "2 of 3"], logs
    finally:
        kubectl("-n", namespace, "delete", "pytorchjob", "--all", "--wait=true",
                check=False, timeout=300)
        drop_static(namespace, pv_name, name="imagenet")


def test_notebook_statefulset_reads_the_dataset(installed: str, namespace: str) -> None:
    """What a Kubeflow Notebook becomes: a StatefulSet with the notebook's volume stanza.

    The real notebook-controller cannot be built here: the Go module proxy
    answers 403 for github.com/kubeflow/kubeflow (see deploy/README.md, the
    local cluster); this is the StatefulSet it would create, the dataset at
    /home/jovyan/data as in deploy/examples/notebook.yaml.
    """
    payload = secrets.token_bytes(40_000)
    digest = hashlib.sha256(payload).hexdigest()
    pv_name = static_dataset(namespace, payload, name="imagenet")
    template = pod("x", namespace, installed, "", "imagenet", read_only=True)["spec"]
    try:
        sts_spec = copy_spec(template, "sha256sum /home/jovyan/data/part-0000.bin; sleep 3600")
        sts_spec["restartPolicy"] = "Always"
        apply([{
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "notebook", "namespace": namespace},
            "spec": {"replicas": 1, "serviceName": "notebook",
                     "selector": {"matchLabels": {"app": "notebook"}},
                     "template": {"metadata": {"labels": {"app": "notebook"}},
                                  "spec": sts_spec}},
        }])
        wait_until("the notebook pod to read the dataset", lambda: digest in kubectl(
            "-n", namespace, "logs", "notebook-0", check=False).stdout, 300)
    finally:
        kubectl("-n", namespace, "delete", "statefulset", "notebook", "--ignore-not-found",
                "--wait=true", check=False, timeout=300)
        drop_static(namespace, pv_name, name="imagenet")


def copy_spec(spec: dict[str, Any], script: str) -> dict[str, Any]:
    out = json.loads(json.dumps(spec))
    c = out["containers"][0]
    c["command"] = ["sh", "-c", script]
    c["volumeMounts"] = [{"name": "data", "mountPath": "/home/jovyan/data", "readOnly": True}]
    return out


def node_name() -> str:
    return kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout.strip()


def test_volume_stats_in_kubelet_metrics(installed: str, namespace: str) -> None:
    sc = dynamic_claim(namespace, "1Gi")
    try:
        apply([pod("holder", namespace, installed, "head -c 100000 /dev/zero > /data/f; "
                   "sleep 600", "data")])
        assert wait_phase("pod", "holder", namespace, "Running", 180) == "Running"
        series = f'namespace="{namespace}",persistentvolumeclaim="data"'

        def capacity() -> str | None:
            raw = kubectl("get", "--raw", f"/api/v1/nodes/{node_name()}/proxy/metrics",
                          check=False).stdout
            hits = [ln for ln in raw.splitlines()
                    if ln.startswith("kubelet_volume_stats_capacity_bytes") and series in ln]
            return hits[0] if hits else None

        line = wait_until("kubelet_volume_stats_capacity_bytes of the claim", capacity, 150, 5)
        assert float(line.rsplit(" ", 1)[1]) > 0, line
    finally:
        drop_dynamic(namespace, sc)


def test_node_plugin_restart_under_a_reader(installed: str, namespace: str) -> None:
    """Delete the node plugin pod while a pod reads: every byte still right."""
    sc = dynamic_claim(namespace, "1Gi")
    seed, size = secrets.token_hex(8), 24 * 1024 * 1024
    digest = hashlib.sha256(pseudo_random(seed, size)).hexdigest()
    try:
        write = (f"python -c '{PSEUDO_RANDOM_SRC}; import sys; "
                 f"sys.stdout.buffer.write(pseudo_random(\"{seed}\", {size}))' "
                 "> /data/big.bin && sha256sum /data/big.bin")
        assert digest in run_pod(pod("writer", namespace, installed, write, "data"))
        slow_read = ("python -c 'import hashlib, sys, time\n"
                     "h = hashlib.sha256(); f = open(\"/data/big.bin\", \"rb\"); n = 0\n"
                     "print(\"reading\", flush=True)\n"
                     "while True:\n"
                     "    b = f.read(262144)\n"
                     "    if not b: break\n"
                     "    h.update(b); n += len(b); time.sleep(0.25)\n"
                     "print(n, h.hexdigest(), flush=True)'")
        apply([pod("slow-reader", namespace, installed, slow_read, "data", read_only=True)])
        wait_until("the reader to start", lambda: "reading" in kubectl(
            "-n", namespace, "logs", "slow-reader", check=False).stdout, 180)
        time.sleep(3)
        kubectl("-n", NAMESPACE, "delete", "pod", "-l", "app.kubernetes.io/component=node",
                "--wait=false")
        kubectl("-n", NAMESPACE, "rollout", "status", "daemonset/hdfs-csi-node",
                "--timeout=300s", timeout=330)
        phase = wait_phase("pod", "slow-reader", namespace, "Succeeded", 300)
        logs = kubectl("-n", namespace, "logs", "slow-reader", check=False).stdout
        assert phase == "Succeeded" and f"{size} {digest}" in logs, \
            f"reader ended {phase}:\n{logs}\nnode plugin:\n{node_plugin_log(80)}"
    finally:
        drop_dynamic(namespace, sc)
        kubectl("-n", NAMESPACE, "rollout", "status", "daemonset/hdfs-csi-node",
                "--timeout=300s", check=False, timeout=330)


def test_zz_no_forbidden_in_sidecar_logs(installed: str) -> None:
    """RBAC: after everything above, no sidecar was refused by the API server."""
    pods = json.loads(kubectl("-n", NAMESPACE, "get", "pods", "-o", "json").stdout)["items"]
    checked, refused = [], []
    for p in pods:
        for c in p["spec"]["containers"]:
            if c["name"] in ("hdfs-csi-driver", "minidfs"):
                continue
            log = kubectl("-n", NAMESPACE, "logs", p["metadata"]["name"], "-c", c["name"],
                          "--tail=-1", check=False).stdout
            checked.append(f"{p['metadata']['name']}/{c['name']}")
            refused += [f"{p['metadata']['name']}/{c['name']}: {ln}" for ln in log.splitlines()
                        if "forbidden" in ln.lower()]
    assert any("csi-provisioner" in c for c in checked) or any(
        "controller" in c for c in checked), checked
    assert not refused, "\n".join(refused[:20])
