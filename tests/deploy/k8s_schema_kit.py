"""Strict validation of Kubernetes objects against the API types.

Two independent checks, because each misses what the other catches:

* :func:`strict_errors` walks the object against the ``kubernetes`` client's
  models (``openapi_types`` / ``attribute_map``), recursively: every key must
  be a field of the model (the models themselves silently drop unknown keys,
  so a misspelled ``mountPropogation`` would otherwise vanish), and every
  scalar must have the field's type (``value: 8020`` for an env var is an
  int where the API wants a string).  Then the client deserializes the
  object, which enforces required fields and the enums it knows.
* :func:`schema_errors` validates against the Kubernetes JSON schemas of a
  given release (``kubernetes-validate``, strict mode) — the client models are
  generated for the *newest* API, so only the schemas of 1.28 prove a field
  exists on the oldest release we support.

Custom resources (Kubeflow ``Notebook``, ``PyTorchJob``) have no models: their
shape is checked by hand here and their pod templates strictly as
``V1PodTemplateSpec``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import kubernetes.client

#: API group of every built-in kind the deploy tree and the tests use.  A kind
#: missing here fails validation: add it consciously, with its group.
KIND_GROUPS = {
    "Namespace": "", "ServiceAccount": "", "ConfigMap": "", "Secret": "", "Service": "",
    "Pod": "", "PersistentVolume": "", "PersistentVolumeClaim": "",
    "Deployment": "apps", "DaemonSet": "apps", "StatefulSet": "apps",
    "Job": "batch", "CronJob": "batch",
    "ClusterRole": "rbac.authorization.k8s.io", "ClusterRoleBinding": "rbac.authorization.k8s.io",
    "Role": "rbac.authorization.k8s.io", "RoleBinding": "rbac.authorization.k8s.io",
    "CSIDriver": "storage.k8s.io", "StorageClass": "storage.k8s.io",
    "PriorityClass": "scheduling.k8s.io",
}

# The client spells container types "list[X]" / "dict(str, X)" in older
# releases and "List[X]" / "Dict[str, X]" in newer ones.
_LIST = re.compile(r"^[Ll]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")


def model_name(obj: dict[str, Any]) -> str:
    """``apps/v1`` + ``Deployment`` -> ``V1Deployment`` (checking the group)."""
    kind = obj.get("kind")
    api_version = obj.get("apiVersion", "")
    group, _, version = api_version.rpartition("/")
    if kind not in KIND_GROUPS:
        raise ValueError(f"kind {kind!r} is not a known built-in kind (see KIND_GROUPS)")
    if KIND_GROUPS[kind] != group:
        raise ValueError(f"{kind} lives in API group {KIND_GROUPS[kind]!r}, not {group!r}")
    name = version[:1].upper() + version[1:] + kind
    if not hasattr(kubernetes.client, name):
        raise ValueError(f"no client model {name} for {api_version} {kind}")
    return name


@cache
def _fields(model: str) -> dict[str, str]:
    """JSON field name -> openapi type string of a client model."""
    cls = getattr(kubernetes.client, model)
    return {cls.attribute_map[attr]: typ for attr, typ in cls.openapi_types.items()}


def strict_errors(value: Any, model: str, path: str = "") -> list[str]:
    """Every unknown field and wrongly typed value of ``value`` read as ``model``."""
    errors: list[str] = []
    _walk(value, model, path or model, errors)
    return errors


def _walk(value: Any, typ: str, path: str, errors: list[str]) -> None:
    if value is None:
        errors.append(f"{path}: null value (leave the field out instead)")
        return
    m = _LIST.match(typ)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list ({typ}), got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _walk(item, m.group(1), f"{path}[{i}]", errors)
        return
    m = _DICT.match(typ)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map ({typ}), got {type(value).__name__}")
            return
        for key, item in value.items():
            if not isinstance(key, str):
                errors.append(f"{path}: map key {key!r} is not a string")
            _walk(item, m.group(1) or m.group(2), f"{path}.{key}", errors)
        return
    if typ in ("str", "bytes"):  # bytes: base64 text (Secret data)
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__} {value!r} "
                          "(quote it)")
    elif typ == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {type(value).__name__} {value!r}")
    elif typ == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{path}: expected a number, got {type(value).__name__} {value!r}")
    elif typ == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true/false, got {type(value).__name__} {value!r}")
    elif typ == "object":
        # IntOrString (ports, maxUnavailable) and raw extensions.
        if not isinstance(value, (str, int, dict, list)) or isinstance(value, bool):
            errors.append(f"{path}: unexpected {type(value).__name__} {value!r}")
    elif typ in ("datetime", "date"):
        if not isinstance(value, str):
            errors.append(f"{path}: expected a timestamp string")
    else:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object ({typ}), got {type(value).__name__}")
            return
        fields = _fields(typ)
        for key, item in value.items():
            if key not in fields:
                near = sorted(f for f in fields if f.lower() == str(key).lower()
                              or f.lower().startswith(str(key).lower()[:4]))
                hint = f" (did you mean {', '.join(near)}?)" if near else ""
                errors.append(f"{path}: unknown field {key!r} in {typ}{hint}")
                continue
            _walk(item, fields[key], f"{path}.{key}", errors)


def deserialize(value: dict[str, Any], model: str) -> Any:
    """The client's own deserialization: raises ValueError on missing required
    fields and on enum values the model knows to be invalid."""
    client = kubernetes.client.ApiClient()
    return client._ApiClient__deserialize(value, model)


def validate_builtin(obj: dict[str, Any]) -> list[str]:
    """Strict model check + client deserialization of a built-in object."""
    try:
        model = model_name(obj)
    except ValueError as exc:
        return [str(exc)]
    label = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    errors = strict_errors(obj, model, label)
    if not errors:
        try:
            deserialize(obj, model)
        except (ValueError, TypeError) as exc:
            errors.append(f"{label}: rejected by the client model: {exc}")
    return errors


# -- custom resources (Kubeflow) -----------------------------------------------------------
def _keys(errors: list[str], value: Any, allowed: set[str], path: str,
          required: set[str] = frozenset()) -> bool:  # type: ignore[assignment]
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object")
        return False
    for key in set(value) - allowed:
        errors.append(f"{path}: unknown field {key!r} (allowed: {sorted(allowed)})")
    for key in required - set(value):
        errors.append(f"{path}: missing required field {key!r}")
    return True


def _pod_template(errors: list[str], template: Any, path: str) -> None:
    errors += strict_errors(template, "V1PodTemplateSpec", path)
    if not errors:
        try:
            deserialize(template, "V1PodTemplateSpec")
        except (ValueError, TypeError) as exc:
            errors.append(f"{path}: rejected by the client model: {exc}")


def _kubeflow_object(errors: list[str], obj: dict[str, Any], kind: str) -> tuple[str, Any]:
    """The checks every kubeflow.org/v1 object shares; returns its error path and spec."""
    path = f"{kind}/{(obj.get('metadata') or {}).get('name')}"
    if obj.get("apiVersion") != "kubeflow.org/v1":
        errors.append(f"{path}: apiVersion must be kubeflow.org/v1")
    _keys(errors, obj, {"apiVersion", "kind", "metadata", "spec"}, path, {"metadata", "spec"})
    errors += strict_errors(obj.get("metadata") or {}, "V1ObjectMeta", f"{path}.metadata")
    return path, obj.get("spec") or {}


def validate_notebook(obj: dict[str, Any]) -> list[str]:
    """Kubeflow ``Notebook`` (kubeflow.org/v1): spec.template is a pod template."""
    errors: list[str] = []
    path, spec = _kubeflow_object(errors, obj, "Notebook")
    if _keys(errors, spec, {"template"}, f"{path}.spec", {"template"}):
        _pod_template(errors, spec.get("template") or {}, f"{path}.spec.template")
    return errors


PYTORCH_REPLICA_TYPES = {"Master", "Worker"}
REPLICA_RESTART_POLICIES = {"Always", "OnFailure", "Never", "ExitCode"}
RUN_POLICY_FIELDS = {"cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds",
                     "backoffLimit", "schedulingPolicy", "suspend", "managedBy"}


def validate_pytorchjob(obj: dict[str, Any]) -> list[str]:
    """Kubeflow training-operator ``PyTorchJob`` (kubeflow.org/v1)."""
    errors: list[str] = []
    path, spec = _kubeflow_object(errors, obj, "PyTorchJob")
    if not _keys(errors, spec, {"pytorchReplicaSpecs", "runPolicy", "elasticPolicy",
                                "nprocPerNode"}, f"{path}.spec", {"pytorchReplicaSpecs"}):
        return errors
    run_policy = spec.get("runPolicy")
    if run_policy is not None:
        _keys(errors, run_policy, RUN_POLICY_FIELDS, f"{path}.spec.runPolicy")
        if run_policy.get("cleanPodPolicy") not in (None, "All", "Running", "None"):
            errors.append(f"{path}.spec.runPolicy.cleanPodPolicy: not All/Running/None")
    replicas = spec.get("pytorchReplicaSpecs") or {}
    if not isinstance(replicas, dict) or not replicas:
        errors.append(f"{path}.spec.pytorchReplicaSpecs: expected a non-empty map")
        return errors
    for rtype, rspec in replicas.items():
        rpath = f"{path}.spec.pytorchReplicaSpecs.{rtype}"
        if rtype not in PYTORCH_REPLICA_TYPES:
            errors.append(f"{rpath}: replica type must be one of {sorted(PYTORCH_REPLICA_TYPES)}")
        if not _keys(errors, rspec, {"replicas", "template", "restartPolicy"}, rpath,
                     {"template"}):
            continue
        if "replicas" in rspec and (isinstance(rspec["replicas"], bool)
                                    or not isinstance(rspec["replicas"], int)):
            errors.append(f"{rpath}.replicas: expected an integer")
        if rspec.get("restartPolicy", "OnFailure") not in REPLICA_RESTART_POLICIES:
            errors.append(f"{rpath}.restartPolicy: not one of {sorted(REPLICA_RESTART_POLICIES)}")
        _pod_template(errors, rspec["template"], f"{rpath}.template")
        containers = ((rspec["template"].get("spec") or {}).get("containers") or [])
        # The operator finds the training container (ports, env) by this name.
        if not any(c.get("name") == "pytorch" for c in containers):
            errors.append(f"{rpath}: one container must be named 'pytorch'")
    return errors


#: By kind, so that a Notebook with a wrong apiVersion is reported as such.
CUSTOM_VALIDATORS = {
    "Notebook": validate_notebook,
    "PyTorchJob": validate_pytorchjob,
}


def validate(obj: dict[str, Any]) -> list[str]:
    """All model-based errors of one object (built-in or a known custom resource)."""
    custom = CUSTOM_VALIDATORS.get(obj.get("kind", ""))
    return custom(obj) if custom else validate_builtin(obj)


# -- JSON schemas of a Kubernetes release --------------------------------------------------
def schema_errors(obj: dict[str, Any], version: str) -> list[str]:
    """Errors from the strict JSON schemas of Kubernetes ``version`` (e.g. "1.28.0")."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path) if exc.path else ""
        return [(f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')} "
                f"@ {where}: {exc.message}")]
    return []
