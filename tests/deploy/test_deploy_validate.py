"""Every object we ship is valid against the Kubernetes API types.

Checked per object: strictly against the ``kubernetes`` client models (no
unknown field, no wrongly typed scalar, required fields present), and against
the strict JSON schemas of Kubernetes 1.28 (the oldest release we support)
and of the newest release ``kubernetes-validate`` knows.  Kubeflow custom
resources get their pod templates checked strictly and their shape by hand.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from deploy_kit import all_rendered, example_objects
from k8s_schema_kit import schema_errors, validate

pytestmark = pytest.mark.timeout(120)

OBJECTS = [(f"{src}:{o['kind']}/{o['metadata']['name']}", o)
           for src, o in list(all_rendered()) + list(example_objects())]
BUILTIN = [(i, o) for i, o in OBJECTS if not o["apiVersion"].startswith("kubeflow.org/")]

try:
    import kubernetes_validate
    SCHEMA_VERSIONS = ["1.28.0", kubernetes_validate.latest_version()]
    NO_SCHEMAS = ""
except ImportError as exc:  # pragma: no cover - it is in the [test] extra
    kubernetes_validate = None
    SCHEMA_VERSIONS = []
    NO_SCHEMAS = f"kubernetes-validate is not installed ({exc}); pip install -e .[test]"


def test_every_kind_is_covered() -> None:
    kinds = {o["kind"] for _, o in OBJECTS}
    assert {"CSIDriver", "DaemonSet", "Deployment", "StorageClass", "PersistentVolume",
            "PersistentVolumeClaim", "Notebook", "PyTorchJob", "Pod", "Job"} <= kinds


@pytest.mark.parametrize("ident, obj", OBJECTS, ids=[i for i, _ in OBJECTS])
def test_object_matches_client_models(ident: str, obj: dict[str, Any]) -> None:
    assert validate(obj) == []


@pytest.mark.skipif(kubernetes_validate is None, reason=NO_SCHEMAS or "n/a")
@pytest.mark.parametrize("version", SCHEMA_VERSIONS or ["none"])
def test_objects_match_release_schemas(version: str) -> None:
    try:
        errors = [e for _, o in BUILTIN for e in schema_errors(o, version)]
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.skip(f"this kubernetes-validate has no schemas for {version}: {exc}")
    assert errors == []


# -- the validators do catch mistakes -------------------------------------------------------
POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "c", "image": "busybox:1.37.0",
                             "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
             "volumes": [{"name": "v", "emptyDir": {}}]},
}


def _mutated(path: list[Any], value: Any, base: dict[str, Any] = POD) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    node = obj
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return obj


@pytest.mark.parametrize("obj, fragment", [
    (_mutated(["spec", "containers", 0, "volumeMounts", 0, "mountPropogation"], "Bidirectional"),
     "unknown field 'mountPropogation'"),
    (_mutated(["spec", "containers", 0, "env"], [{"name": "PORT", "value": 8020}]),
     "expected a string"),
    (_mutated(["spec", "containers", 0, "ports"], [{"containerPort": "8020"}]),
     "expected an integer"),
    (_mutated(["spec", "hostNetwork"], "true"), "expected true/false"),
    (_mutated(["spec", "containers", 0, "name"], KeyError), "rejected by the client model"),
    (_mutated(["apiVersion"], "apps/v1"), "API group"),
    (_mutated(["kind"], "Pdo"), "not a known built-in kind"),
    (_mutated(["spec", "volumes", 0, "hostPath"], {"path": "/x", "typ": "Directory"}),
     "unknown field 'typ'"),
])
def test_validator_catches(obj: dict[str, Any], fragment: str) -> None:
    errors = validate(obj)
    assert any(fragment in e for e in errors), errors


@pytest.mark.skipif(kubernetes_validate is None, reason=NO_SCHEMAS or "n/a")
def test_schema_check_catches_a_field_newer_than_1_28() -> None:
    # recursiveReadOnly arrived in Kubernetes 1.30: the newest client models
    # accept it, only the 1.28 schema proves it would be dropped there.
    obj = _mutated(["spec", "containers", 0, "volumeMounts", 0, "recursiveReadOnly"], "Disabled")
    assert validate(obj) == []
    assert schema_errors(obj, "1.28.0")
    assert schema_errors(obj, kubernetes_validate.latest_version()) == []


NOTEBOOK = {
    "apiVersion": "kubeflow.org/v1", "kind": "Notebook", "metadata": {"name": "nb"},
    "spec": {"template": {"spec": {"containers": [{"name": "nb", "image": "x:1"}]}}},
}
JOB = {
    "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "j"},
    "spec": {"pytorchReplicaSpecs": {"Worker": {
        "replicas": 2, "restartPolicy": "OnFailure",
        "template": {"spec": {"containers": [{"name": "pytorch", "image": "x:1"}]}}}}},
}


@pytest.mark.parametrize("obj, fragment", [
    (_mutated(["spec", "templates"], {}, NOTEBOOK), "unknown field 'templates'"),
    (_mutated(["spec", "template", "spec", "containers", 0, "imag"], "x", NOTEBOOK),
     "unknown field 'imag'"),
    (_mutated(["apiVersion"], "kubeflow.org/v1beta1", NOTEBOOK), "kubeflow.org/v1"),
    (_mutated(["spec", "pytorchReplicaSpecs", "Chief"],
              JOB["spec"]["pytorchReplicaSpecs"]["Worker"], JOB), "replica type"),
    (_mutated(["spec", "pytorchReplicaSpecs", "Worker", "restartPolicy"], "Sometimes", JOB),
     "restartPolicy"),
    (_mutated(["spec", "pytorchReplicaSpecs", "Worker", "template", "spec", "containers", 0,
               "name"], "trainer", JOB), "named 'pytorch'"),
    (_mutated(["spec", "pytorchReplicaSpecs", "Worker", "replicas"], "2", JOB),
     "expected an integer"),
])
def test_custom_resource_validator_catches(obj: dict[str, Any], fragment: str) -> None:
    errors = validate(obj)
    assert any(fragment in e for e in errors), errors


def test_custom_resource_validator_accepts_minimal_objects() -> None:
    assert validate(NOTEBOOK) == []
    assert validate(JOB) == []
