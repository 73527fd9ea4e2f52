"""What the manifests must guarantee beyond schema validity.

Pinned images; a node plugin with exactly the host access FUSE + CSI need
(privileged, /dev/fuse, Bidirectional propagation on the kubelet directory,
registration and host state directories); least-privilege RBAC; resource
requests and limits on every container; and examples that reference objects
and keys that really exist.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import yaml
from deploy_kit import (
    DEPLOY,
    DRIVER_IMAGE,
    DRIVER_NAME,
    DRIVER_TAG,
    KUBELET_DIR,
    PLUGIN_DIR,
    all_rendered,
    container,
    containers,
    env_value,
    example_objects,
    find,
    mount_at,
    pod_specs,
    rel,
    rendered,
    volume_for_mount,
)

pytestmark = pytest.mark.timeout(60)

ALL = list(all_rendered()) + list(example_objects())
WORKLOADS = [(src, o) for src, o in ALL if pod_specs(o)]
SEMVER_TAG = re.compile(r"^v?\d+\.\d+\.\d+([.-][0-9A-Za-z.-]+)?$")


# -- images ----------------------------------------------------------------------------------
@pytest.mark.parametrize("src, obj", WORKLOADS,
                         ids=[f"{s}:{o['metadata']['name']}" for s, o in WORKLOADS])
def test_images_are_pinned(src: str, obj: dict[str, Any]) -> None:
    for c in containers(obj):
        image = c["image"]
        name, _, digest = image.partition("@")
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else None
        assert tag or digest, f"{c['name']}: {image} has neither tag nor digest"
        assert tag != "latest", f"{c['name']}: {image} uses :latest"
        if tag and not digest:
            assert SEMVER_TAG.match(tag.split("-")[0]) or SEMVER_TAG.match(tag), \
                f"{c['name']}: {image}: tag is not an exact version"
        if name.startswith("registry.k8s.io/"):
            assert name.startswith("registry.k8s.io/sig-storage/"), image


def test_driver_image_is_the_release() -> None:
    k = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    assert {"name": DRIVER_IMAGE, "newTag": DRIVER_TAG} in k["images"]
    for src, obj in all_rendered():
        for c in containers(obj):
            if c["image"].startswith(DRIVER_IMAGE):
                assert c["image"] == f"{DRIVER_IMAGE}:{DRIVER_TAG}", f"{src}: {c['image']}"


def test_every_container_has_requests_and_memory_limit() -> None:
    for src, obj in WORKLOADS:
        for c in containers(obj):
            res = c.get("resources", {})
            where = f"{src}:{obj['metadata']['name']}/{c['name']}"
            assert {"cpu", "memory"} <= set(res.get("requests", {})), where
            assert "memory" in res.get("limits", {}), where


# -- CSIDriver -------------------------------------------------------------------------------
def test_csidriver() -> None:
    spec = find(rendered("deploy/base"), "CSIDriver", DRIVER_NAME)["spec"]
    assert spec["attachRequired"] is False
    assert spec["podInfoOnMount"] is True
    # kubelet must never chown a dataset recursively; the driver does not
    # advertise VOLUME_MOUNT_GROUP, so "File" would mean a recursive walk.
    assert spec["fsGroupPolicy"] == "None"
    assert set(spec["volumeLifecycleModes"]) == {"Persistent", "Ephemeral"}


# -- node plugin -----------------------------------------------------------------------------
NODE_DIRS = ["deploy/base", "deploy/overlays/minikube", "deploy/overlays/kerberos-ha"]


@pytest.mark.parametrize("directory", NODE_DIRS)
def test_node_plugin_host_access(directory: str) -> None:
    ds = find(rendered(directory), "DaemonSet", "hdfs-csi-node")
    spec = pod_specs(ds)[0]
    driver = container(ds, "hdfs-csi-driver")
    assert driver["securityContext"]["privileged"] is True

    kubelet = mount_at(driver, KUBELET_DIR)
    assert kubelet["mountPropagation"] == "Bidirectional"
    assert volume_for_mount(spec, kubelet)["hostPath"]["path"] == KUBELET_DIR

    fuse = volume_for_mount(spec, mount_at(driver, "/dev/fuse"))
    assert fuse["hostPath"] == {"path": "/dev/fuse", "type": "CharDevice"}

    socket = volume_for_mount(spec, mount_at(driver, "/csi"))
    assert socket["hostPath"]["path"] == PLUGIN_DIR

    conf_dir = env_value(driver, "HADOOP_CONF_DIR")
    conf = volume_for_mount(spec, mount_at(driver, conf_dir))
    assert conf["configMap"]["name"] == "hadoop-conf"

    # Only the driver container gets host privileges; sidecars get nothing.
    for c in spec["containers"]:
        if c is driver:
            continue
        assert not c.get("securityContext", {}).get("privileged"), c["name"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, c["name"]
        for m in c.get("volumeMounts", []):
            assert "mountPropagation" not in m, c["name"]

    # Critical, everywhere, no CPU limit on the FUSE host, no API token.
    assert spec["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in spec["tolerations"]
    assert "cpu" not in driver["resources"].get("limits", {})
    assert spec["automountServiceAccountToken"] is False
    # Keepers and FUSE daemons outlive the pod: in the pod's own network
    # namespace they would lose HDFS when it goes (the real cluster showed it).
    assert spec["hostNetwork"] is True and spec["hostPID"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    port = driver["ports"][0]["containerPort"]
    assert port != 9808, "9808 is the livenessprobe default other drivers take on the host"
    probe = container(ds, "liveness-probe")
    assert f"--health-port={port}" in probe["args"]


def test_node_plugin_memory_covers_fuse_daemons() -> None:
    """The FUSE daemons share the driver container's memory limit."""
    from hdfs_csi_common.units import parse_size

    ds = find(rendered("deploy/base"), "DaemonSet", "hdfs-csi-node")
    limit = parse_size(container(ds, "hdfs-csi-driver")["resources"]["limits"]["memory"])
    try:
        from fuse_mount.options import MountOptions
        per_mount = MountOptions().read_ahead_memory
    except ImportError:
        per_mount = 256 << 20
    assert limit >= 256 * 2**20 + 8 * per_mount, "room for the driver plus eight busy volumes"


def test_namespace_allows_the_privileged_node_plugin() -> None:
    ns = find(rendered("deploy/base"), "Namespace", "hdfs-csi")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


# -- controller ------------------------------------------------------------------------------
def test_controller_runs_unprivileged_with_leader_election() -> None:
    dep = find(rendered("deploy/base"), "Deployment", "hdfs-csi-controller")
    spec = pod_specs(dep)[0]
    assert dep["spec"]["replicas"] >= 2
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
    for name in ("csi-provisioner", "csi-resizer"):
        assert "--leader-election" in container(dep, name)["args"]


def test_controller_state_dir_is_writable_and_in_memory() -> None:
    """The controller writes a Kerberos keytab to its --state-dir for the length of
    one CreateVolume; with a read-only root filesystem that directory must be a
    volume of its own (the real cluster's first controller pod crash-looped on
    "cannot create --state-dir /var/lib/hdfs-csi: Read-only file system"), and a
    memory-backed one, so a keytab never reaches the node's disk."""
    from csi_driver.config import Config

    dep = find(rendered("deploy/base"), "Deployment", "hdfs-csi-controller")
    driver = container(dep, "hdfs-csi-driver")
    state_dir = next((a.split("=", 1)[1] for a in driver["args"]
                      if a.startswith("--state-dir=")), Config.state_dir)
    mounts = {m["mountPath"]: m["name"] for m in driver["volumeMounts"]}
    assert state_dir in mounts, (state_dir, mounts)
    volume = next(v for v in pod_specs(dep)[0]["volumes"] if v["name"] == mounts[state_dir])
    assert volume.get("emptyDir", {}).get("medium") == "Memory", volume


# -- RBAC ------------------------------------------------------------------------------------
def _rules(objs: Any, kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(o["metadata"]["name"], r) for o in objs if o["kind"] == kind for r in o["rules"]]


def test_rbac_is_least_privilege() -> None:
    objs = rendered("deploy/base")
    for name, rule in _rules(objs, "ClusterRole") + _rules(objs, "Role"):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"{name}: wildcard {field}"
        assert "escalate" not in rule["verbs"] and "bind" not in rule["verbs"], name
    for name, rule in _rules(objs, "ClusterRole"):
        assert "secrets" not in rule["resources"], f"{name}: cluster-wide secret access"
        assert "pods" not in rule["resources"], f"{name}: the resizer does not watch pods"
    secret_rules = [r for _, r in _rules(objs, "Role") if "secrets" in r["resources"]]
    assert secret_rules and all(r["verbs"] == ["get"] for r in secret_rules)


def test_rbac_bindings_point_at_existing_objects() -> None:
    objs = rendered("deploy/base")
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"])
                for o in objs if o["kind"] == "ServiceAccount"}
    roles = {(o["kind"], o["metadata"]["name"]) for o in objs
             if o["kind"] in ("Role", "ClusterRole")}
    for b in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert (b["roleRef"]["kind"], b["roleRef"]["name"]) in roles, b["metadata"]["name"]
        for s in b["subjects"]:
            assert (s["namespace"], s["name"]) in accounts, b["metadata"]["name"]
    for _src, obj in all_rendered():
        for spec in pod_specs(obj):
            sa = spec.get("serviceAccountName")
            if sa:
                assert (obj["metadata"]["namespace"], sa) in accounts


@pytest.mark.parametrize("directory", NODE_DIRS)
def test_referenced_config_maps_exist(directory: str) -> None:
    objs = rendered(directory)
    maps = {o["metadata"]["name"] for o in objs if o["kind"] == "ConfigMap"}
    for obj in objs:
        for spec in pod_specs(obj):
            for v in spec.get("volumes", []):
                if "configMap" in v:
                    assert v["configMap"]["name"] in maps, (directory, v)
            for c in spec["containers"]:
                for e in c.get("envFrom", []):
                    assert e["configMapRef"]["name"] in maps


# -- examples --------------------------------------------------------------------------------
def _params_module() -> Any:
    from csi_driver import params   # the project's own module: an import error fails

    return params


def _storage_classes() -> list[tuple[str, dict[str, Any]]]:
    return [(s, o) for s, o in ALL if o["kind"] == "StorageClass"]


def test_storage_class_parameters_are_driver_keys() -> None:
    params = _params_module()
    assert _storage_classes()
    for src, sc in _storage_classes():
        assert sc["provisioner"] == DRIVER_NAME, src
        for key, value in sc["parameters"].items():
            if key.startswith(params.IGNORED_PREFIXES):
                continue
            assert key in params.STORAGE_CLASS_KEYS, f"{src}: unknown parameter {key}"
            assert isinstance(value, str)
        if "onDelete" in sc["parameters"]:
            assert sc["parameters"]["onDelete"] in params.ON_DELETE_POLICIES
        assert sc.get("allowVolumeExpansion") is True, f"{src}: quota expansion is supported"


def test_csi_volume_attributes_are_driver_keys() -> None:
    params = _params_module()
    seen = 0
    for src, obj in ALL:
        csi_sources = []
        if obj["kind"] == "PersistentVolume":
            csi_sources.append(obj["spec"]["csi"])
        for spec in pod_specs(obj):
            csi_sources += [v["csi"] for v in spec.get("volumes", []) if "csi" in v]
        for csi in csi_sources:
            seen += 1
            assert csi["driver"] == DRIVER_NAME, src
            assert set(csi["volumeAttributes"]) <= set(params.VOLUME_CONTEXT_KEYS), src
            assert "path" in csi["volumeAttributes"], src
    assert seen >= 2, "a static PV and an inline volume"


def test_secret_examples_use_driver_keys() -> None:
    params = _params_module()
    secrets = [(s, o) for s, o in ALL if o["kind"] == "Secret"]
    assert secrets
    for src, secret in secrets:
        data = secret.get("stringData", {})
        assert set(data) <= set(params.SECRET_KEYS), src
        if params.SECRET_KERBEROS_KEYTAB in data:
            base64.b64decode(data[params.SECRET_KERBEROS_KEYTAB], validate=True)
            assert params.SECRET_KERBEROS_PRINCIPAL in data


def _namespaced(kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
            for _, o in ALL if o["kind"] == kind}


def test_example_claims_resolve() -> None:
    classes = {o["metadata"]["name"] for _, o in _storage_classes()}
    pvs = {o["metadata"]["name"]: o for _, o in ALL if o["kind"] == "PersistentVolume"}
    claims = _namespaced("PersistentVolumeClaim")
    secrets = _namespaced("Secret")
    for (_ns, name), pvc in claims.items():
        sc = pvc["spec"].get("storageClassName")
        if sc:
            assert sc in classes, f"PVC {name}: no StorageClass {sc}"
        else:
            pv = pvs[pvc["spec"]["volumeName"]]
            assert set(pvc["spec"]["accessModes"]) <= set(pv["spec"]["accessModes"])
            ref = pv["spec"]["csi"]["nodeStageSecretRef"]
            assert (ref["namespace"], ref["name"]) in secrets
    for _src, obj in ALL:
        for spec in pod_specs(obj):
            for v in spec.get("volumes", []):
                if "persistentVolumeClaim" in v:
                    key = (obj["metadata"]["namespace"], v["persistentVolumeClaim"]["claimName"])
                    assert key in claims, f"{obj['metadata']['name']}: no claim {key}"
                if "csi" in v and "nodePublishSecretRef" in v["csi"]:
                    key = (obj["metadata"]["namespace"], v["csi"]["nodePublishSecretRef"]["name"])
                    assert key in secrets


SECRET_PARAM = re.compile(r"^csi\.storage\.k8s\.io/([a-z-]+)-secret-(name|namespace)$")


def test_storage_class_secrets_fit_the_driver_and_rbac() -> None:
    """The FUSE mount (and its identity) is made at NodeStage, so node secrets
    are stage secrets; controller secrets can only be read in the driver's
    namespace (the one Role that grants secrets)."""
    role_ns = {o["metadata"]["namespace"] for o in rendered("deploy/base") if o["kind"] == "Role"
               and any("secrets" in r["resources"] for r in o["rules"])}
    for src, sc in _storage_classes():
        kinds: dict[str, dict[str, str]] = {}
        for key, value in sc["parameters"].items():
            m = SECRET_PARAM.match(key)
            if m:
                kinds.setdefault(m.group(1), {})[m.group(2)] = value
        # The minikube class has none: minidfs trusts the driver's own users.
        assert set(kinds) <= {"provisioner", "controller-expand", "node-stage"}, (src, kinds)
        if src.startswith("deploy/examples") or "kerberos" in src:
            assert set(kinds) == {"provisioner", "controller-expand", "node-stage"}, src
        for kind in set(kinds) & {"provisioner", "controller-expand"}:
            assert kinds[kind]["namespace"] in role_ns, (src, kind)
        for ref in kinds.values():
            assert set(ref) == {"name", "namespace"}, (src, ref)


def test_static_dataset_is_read_only_many() -> None:
    pv = next(o for _, o in ALL if o["kind"] == "PersistentVolume")
    assert pv["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["csi"]["readOnly"] is True


def test_notebook_mounts_the_dataset_at_home_data() -> None:
    nb = next(o for _, o in ALL if o["kind"] == "Notebook")
    spec = pod_specs(nb)[0]
    c = spec["containers"][0]
    mount = mount_at(c, "/home/jovyan/data")
    assert mount["readOnly"] is True
    assert volume_for_mount(spec, mount)["persistentVolumeClaim"]["claimName"] == "imagenet"
    assert not c.get("securityContext", {}).get("privileged"), "no privilege in the notebook"


def test_pytorchjob_workers_read_the_dataset() -> None:
    job = next(o for _, o in ALL if o["kind"] == "PyTorchJob")
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] >= 2
    for spec in pod_specs(job):
        c = next(c for c in spec["containers"] if c["name"] == "pytorch")
        volume = volume_for_mount(spec, mount_at(c, "/data"))
        assert volume["persistentVolumeClaim"]["readOnly"] is True


def test_examples_cover_the_issue() -> None:
    names = {p.name for p in (DEPLOY / "examples").glob("*.yaml")}
    assert {"storageclass.yaml", "static-pv-dataset.yaml", "notebook.yaml", "pytorchjob.yaml",
            "inline-ephemeral-pod.yaml", "bench-job.yaml"} <= names, rel(DEPLOY / "examples")
