"""Offline renderer for the kustomize subset that ``deploy/`` uses.

Why hand-written: the tests must render every kustomization on machines with
no ``kubectl`` and no network, and PyPI has no maintained kustomize (its
"kustomize" package is an unrelated 2024 toy).  So this module implements the
handful of kustomize v5 features our kustomizations use, with the semantics
``kubectl kustomize`` (kustomize 5.x) has for them, and *refuses* everything
else: a kustomization that strays outside the subset fails loudly here instead
of being rendered differently from the real tool.  Where ``kubectl`` is
available, ``test_deploy_render.py`` checks that both render the same objects.

Supported (and nothing more):

* ``resources``: YAML files and directories holding a kustomization;
* ``namespace``: set on namespaced objects, and on ServiceAccount subjects of
  (Cluster)RoleBindings that are named ``default`` or name a ServiceAccount of
  the same build;
* ``labels`` with ``includeSelectors``/``includeTemplates`` false: added to
  ``metadata.labels`` only;
* ``images``: ``name`` + ``newName`` / ``newTag`` / ``digest`` on every
  ``containers`` / ``initContainers`` list;
* ``replicas``: ``name`` + ``count``;
* ``configMapGenerator`` / ``secretGenerator``: ``files``, ``literals``,
  ``envs``; ``behavior`` create / replace / merge; name hashes must be
  disabled (``generatorOptions`` or per-generator ``options``);
* ``patches``: one document each (kubectl 1.28's kustomize reads no more):
  strategic-merge patches (from ``path`` or inline ``patch``;
  merge keys of the Pod API for containers, volumes, mounts, env, ports;
  ``$patch: delete``) and JSON 6902 patches (add / remove / replace) with a
  ``target``.

Transformers run in kustomize's order: patches, namespace, labels, replicas,
images.
"""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {
    "apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas",
    "configMapGenerator", "secretGenerator", "generatorOptions", "patches",
}

#: Kinds that are not namespaced (kustomize knows these from the built-in
#: OpenAPI; unknown kinds, such as custom resources, count as namespaced).
CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "StorageClass", "CSIDriver", "CSINode", "VolumeAttachment",
    "VolumeAttributesClass", "PriorityClass", "RuntimeClass", "IngressClass",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService",
    "PodSecurityPolicy", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
})

#: Strategic-merge keys of the list fields our patches touch (from the
#: ``x-kubernetes-patch-merge-key`` of the Pod API).  Lists not named here are
#: replaced by the patch's list, as kustomize does for atomic lists.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "env": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
}

#: kustomize's "legacy" output order (the default of ``kubectl kustomize``).
ORDER_FIRST = [
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
    "ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding",
    "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange",
    "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
    "StatefulSet", "CronJob", "PodDisruptionBudget",
]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


class KustomizeError(ValueError):
    """The kustomization is invalid, or uses kustomize features outside the subset."""


# -- entry point ---------------------------------------------------------------------------
def render(directory: str | os.PathLike[str]) -> list[Obj]:
    """Build the kustomization in ``directory``; objects in kustomize's legacy order."""
    objs = _build(Path(directory).resolve(), stack=())
    return sorted(objs, key=_legacy_key)


def find_kustomizations(root: str | os.PathLike[str]) -> list[Path]:
    """Every directory under ``root`` holding a kustomization file."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        if any(name in files for name in KUSTOMIZATION_FILES):
            found.append(Path(dirpath))
    return sorted(found)


def load_yaml_documents(path: Path) -> list[Obj]:
    """Non-empty YAML documents of a manifest file; each must be a Kubernetes object."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: every document must be an object with apiVersion/kind")
        if doc["kind"].endswith("List"):
            raise KustomizeError(f"{path}: List objects are outside the supported subset")
    return docs


# -- one kustomization ---------------------------------------------------------------------
def _kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise KustomizeError(f"{directory}: no kustomization file")


def _build(directory: Path, stack: tuple[Path, ...]) -> list[Obj]:
    if directory in stack:
        raise KustomizeError(f"kustomization cycle through {directory}")
    kfile = _kustomization_file(directory)
    k = yaml.safe_load(kfile.read_text()) or {}
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: fields outside the supported subset: {sorted(unknown)}")
    if k.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{kfile}: kind must be Kustomization (components are not supported)")

    objs: list[Obj] = []
    for entry in k.get("resources") or []:
        target = _inside_or_dir(directory, entry, kfile)
        if target.is_dir():
            objs.extend(_build(target.resolve(), stack + (directory,)))
        else:
            objs.extend(copy.deepcopy(load_yaml_documents(target)))
    _check_unique(objs, kfile)

    gen_opts = k.get("generatorOptions") or {}
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for gen in k.get(key) or []:
            _generate(objs, kind, gen, gen_opts, directory, kfile)

    for patch in k.get("patches") or []:
        _apply_patch_entry(objs, patch, directory, kfile)

    if "namespace" in k:
        _set_namespace(objs, k["namespace"])
    for entry in k.get("labels") or []:
        _add_labels(objs, entry, kfile)
    for entry in k.get("replicas") or []:
        _set_replicas(objs, entry, kfile)
    for entry in k.get("images") or []:
        _set_images(objs, entry, kfile)
    _check_unique(objs, kfile)
    return objs


def _inside_or_dir(directory: Path, entry: str, kfile: Path) -> Path:
    """Resolve a resource path.  Files must stay inside the kustomization root
    (kustomize's default load restrictor); other kustomization directories may
    live anywhere (that is how overlays reach ``../../base``)."""
    if "://" in entry or entry.startswith("git@"):
        raise KustomizeError(f"{kfile}: remote resource {entry!r} is outside the supported subset")
    target = (directory / entry).resolve()
    if not target.exists():
        raise KustomizeError(f"{kfile}: resource {entry!r} does not exist")
    if target.is_file() and directory not in target.parents:
        raise KustomizeError(f"{kfile}: file {entry!r} is outside the kustomization root")
    return target


def _file_inside(directory: Path, entry: str, kfile: Path) -> Path:
    target = (directory / entry).resolve()
    if directory not in target.parents:
        raise KustomizeError(f"{kfile}: file {entry!r} is outside the kustomization root")
    if not target.is_file():
        raise KustomizeError(f"{kfile}: file {entry!r} does not exist")
    return target


def _ident(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return (group, obj["kind"], meta.get("namespace") or "", meta.get("name") or "")


def _check_unique(objs: list[Obj], kfile: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for obj in objs:
        ident = _ident(obj)
        if ident in seen:
            raise KustomizeError(f"{kfile}: duplicate object {ident}")
        seen.add(ident)


def _legacy_key(obj: Obj) -> tuple[int, str, str, str]:
    kind = obj["kind"]
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind)
    elif kind in ORDER_LAST:
        rank = len(ORDER_FIRST) + 1 + ORDER_LAST.index(kind)
    else:
        rank = len(ORDER_FIRST)
    meta = obj.get("metadata") or {}
    return (rank, f'{obj["apiVersion"]}/{kind}', meta.get("namespace") or "",
            meta.get("name") or "")


# -- generators ----------------------------------------------------------------------------
def _generate(objs: list[Obj], kind: str, gen: Obj, gen_opts: Obj, directory: Path,
              kfile: Path) -> None:
    allowed = {"name", "namespace", "behavior", "files", "literals", "envs", "options", "type"}
    unknown = set(gen) - allowed
    if unknown:
        raise KustomizeError(f"{kfile}: generator fields outside the subset: {sorted(unknown)}")
    opts = {**gen_opts, **(gen.get("options") or {})}
    if not opts.get("disableNameSuffixHash"):
        raise KustomizeError(f"{kfile}: generator {gen.get('name')!r} must disable the name "
                             "hash (the renderer does not compute kustomize's hash suffix)")
    extra_opts = set(opts) - {"disableNameSuffixHash", "labels", "annotations"}
    if extra_opts:
        raise KustomizeError(f"{kfile}: generator options outside the subset: {sorted(extra_opts)}")

    data: dict[str, str] = {}
    for entry in gen.get("files") or []:
        key, _, rel = entry.partition("=") if "=" in entry else (None, "", entry)
        path = _file_inside(directory, rel, kfile)
        data[key or path.name] = path.read_text()
    for entry in gen.get("envs") or []:
        for line in _file_inside(directory, entry, kfile).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                data[k.strip()] = v
    for entry in gen.get("literals") or []:
        k, sep, v = entry.partition("=")
        if not sep:
            raise KustomizeError(f"{kfile}: literal {entry!r} is not KEY=VALUE")
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        data[k] = v

    name = gen["name"]
    behavior = gen.get("behavior", "create")
    meta: Obj = {"name": name}
    if gen.get("namespace"):
        meta["namespace"] = gen["namespace"]
    if opts.get("labels"):
        meta["labels"] = dict(opts["labels"])
    if opts.get("annotations"):
        meta["annotations"] = dict(opts["annotations"])

    if kind == "Secret":
        payload = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        payload = data

    if behavior == "create":
        new: Obj = {"apiVersion": "v1", "kind": kind, "metadata": meta}
        if kind == "Secret":
            new["type"] = gen.get("type", "Opaque")
        if payload:
            new["data"] = payload
        objs.append(new)
        return
    if behavior not in ("replace", "merge"):
        raise KustomizeError(f"{kfile}: unknown generator behavior {behavior!r}")
    matches = [o for o in objs if o["kind"] == kind
               and o["metadata"].get("name") == name
               and (not gen.get("namespace")
                    or o["metadata"].get("namespace") == gen["namespace"])]
    if len(matches) != 1:
        raise KustomizeError(f"{kfile}: {behavior} of {kind} {name!r} needs exactly one "
                             f"existing object, found {len(matches)}")
    target = matches[0]
    if behavior == "replace":
        target["data"] = payload
    else:
        target["data"] = {**(target.get("data") or {}), **payload}
    for key in ("labels", "annotations"):
        if key in meta:
            target["metadata"].setdefault(key, {}).update(meta[key])


# -- patches -------------------------------------------------------------------------------
def _apply_patch_entry(objs: list[Obj], entry: Obj, directory: Path, kfile: Path) -> None:
    unknown = set(entry) - {"path", "patch", "target"}
    if unknown or ("path" in entry) == ("patch" in entry):
        raise KustomizeError(f"{kfile}: a patch needs exactly one of path/patch (and an "
                             f"optional target); got {sorted(entry)}")
    text = (_file_inside(directory, entry["path"], kfile).read_text()
            if "path" in entry else entry["patch"])
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    if len(docs) != 1:
        # kustomize before v5.1 (the one in kubectl 1.28) cannot parse them.
        raise KustomizeError(f"{kfile}: a patch must hold exactly one document, found {len(docs)}")
    if isinstance(docs[0], list):
        if "target" not in entry:
            raise KustomizeError(f"{kfile}: a JSON 6902 patch needs a target")
        for obj in _select(objs, entry["target"], kfile):
            _json6902(obj, docs[0], kfile)
        return
    for doc in docs:
        if not isinstance(doc, dict):
            raise KustomizeError(f"{kfile}: a strategic-merge patch must be an object")
        if "target" in entry:
            targets = _select(objs, entry["target"], kfile)
        else:
            meta = doc.get("metadata") or {}
            targets = [o for o in objs if o["kind"] == doc.get("kind")
                       and o["metadata"].get("name") == meta.get("name")
                       and (not meta.get("namespace")
                            or o["metadata"].get("namespace") == meta["namespace"])]
        if not targets:
            raise KustomizeError(f"{kfile}: patch matches no object: "
                                 f"{doc.get('kind')} {(doc.get('metadata') or {}).get('name')}")
        for obj in targets:
            patch = copy.deepcopy(doc)
            if "target" in entry:  # identity fields of a targeted patch do not rename
                patch.pop("apiVersion", None)
                patch.pop("kind", None)
                (patch.get("metadata") or {}).pop("name", None)
            merged = _smp(obj, patch, "")
            obj.clear()
            obj.update(merged)


def _select(objs: list[Obj], target: Obj, kfile: Path) -> list[Obj]:
    unknown = set(target) - {"group", "version", "kind", "name", "namespace"}
    if unknown:
        raise KustomizeError(
            f"{kfile}: patch target selectors outside the subset: {sorted(unknown)}")
    out = []
    for obj in objs:
        group, _, version = obj["apiVersion"].rpartition("/")
        meta = obj.get("metadata") or {}
        if ("group" in target and target["group"] != group) or \
           ("version" in target and target["version"] != version) or \
           ("kind" in target and target["kind"] != obj["kind"]) or \
           ("name" in target and target["name"] != meta.get("name")) or \
           ("namespace" in target and target["namespace"] != meta.get("namespace")):
            continue
        out.append(obj)
    if not out:
        raise KustomizeError(f"{kfile}: patch target {target} matches no object")
    return out


def _smp(base: Any, patch: Any, field: str) -> Any:
    """Strategic merge of ``patch`` into ``base`` (returns the result)."""
    if isinstance(patch, dict):
        directive = patch.get("$patch")
        if directive == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        if directive not in (None, "merge"):
            raise KustomizeError(f"unsupported $patch directive {directive!r} at {field}")
        if not isinstance(base, dict):
            base = {}
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if key == "$patch":
                continue
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = _smp(out[key], value, key)
            else:
                out[key] = _strip_directives(copy.deepcopy(value))
        return out
    if isinstance(patch, list):
        key = _merge_key(field, patch, base)
        if key is None or not isinstance(base, list):
            return _strip_directives(copy.deepcopy(patch))
        return _merge_list(base, patch, key, field)
    return copy.deepcopy(patch)


def _merge_key(field: str, patch: list[Any], base: Any) -> str | None:
    if field == "ports":  # containerPort for container ports, port for Service ports
        items = [i for i in list(patch) + list(base or []) if isinstance(i, dict)]
        if items and all("containerPort" in i for i in items):
            return "containerPort"
        if items and all("port" in i for i in items):
            return "port"
        return None
    return MERGE_KEYS.get(field)


def _merge_list(base: list[Any], patch: list[Any], key: str, field: str) -> list[Any]:
    # kustomize (kyaml merge2) emits the patch's elements first, in patch order
    # (merged into the base element with the same key, if any), then the base
    # elements the patch did not mention, in base order.
    by_key = {item.get(key): item for item in base if isinstance(item, dict)}
    out: list[Any] = []
    mentioned: set[Any] = set()
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise KustomizeError(f"list {field} items need the merge key {key!r}")
        mentioned.add(item[key])
        if item.get("$patch") == "delete":
            continue
        if item[key] in by_key:
            out.append(_smp(by_key[item[key]], item, field))
        else:
            out.append(_strip_directives(copy.deepcopy(item)))
    out += [copy.deepcopy(item) for item in base
            if not (isinstance(item, dict) and item.get(key) in mentioned)]
    return out


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if k != "$patch"}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value
                if not (isinstance(v, dict) and v.get("$patch") == "delete")]
    return value


def _json6902(obj: Obj, ops: list[Obj], kfile: Path) -> None:
    for op in ops:
        kind, path = op.get("op"), op.get("path")
        if kind not in ("add", "remove", "replace") or not isinstance(path, str):
            raise KustomizeError(f"{kfile}: JSON 6902 op outside the subset: {op}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        parent: Any = obj
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            if kind == "add":
                index = len(parent) if last == "-" else int(last)
                parent.insert(index, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del parent[int(last)]
            else:
                parent[int(last)] = copy.deepcopy(op["value"])
        else:
            if kind == "remove":
                del parent[last]
            elif kind == "replace" and last not in parent:
                raise KustomizeError(f"{kfile}: replace of missing path {path}")
            else:
                parent[last] = copy.deepcopy(op["value"])


# -- transformers --------------------------------------------------------------------------
def _set_namespace(objs: list[Obj], namespace: str) -> None:
    # Two kustomize mechanisms touch RoleBinding subjects: the namespace
    # transformer sets it on ServiceAccount subjects named "default", and the
    # name-reference transformer follows a ServiceAccount of this build to its
    # new namespace.  Other subjects (accounts defined elsewhere) stay as written.
    accounts = {(o["metadata"].get("name"), o["metadata"].get("namespace") or "")
                for o in objs if o["kind"] == "ServiceAccount"}
    for obj in objs:
        if obj["kind"] not in CLUSTER_SCOPED:
            obj.setdefault("metadata", {})["namespace"] = namespace
    for obj in objs:
        if obj["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        for subject in obj.get("subjects") or []:
            if subject.get("kind") != "ServiceAccount":
                continue
            if subject.get("name") == "default" or \
                    (subject.get("name"), subject.get("namespace") or "") in accounts:
                subject["namespace"] = namespace


def _add_labels(objs: Iterable[Obj], entry: Obj, kfile: Path) -> None:
    unknown = set(entry) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown or entry.get("includeSelectors") or entry.get("includeTemplates"):
        raise KustomizeError(f"{kfile}: only labels with includeSelectors/includeTemplates "
                             "false are supported")
    for obj in objs:
        labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        labels.update({str(k): str(v) for k, v in (entry.get("pairs") or {}).items()})


def _set_replicas(objs: Iterable[Obj], entry: Obj, kfile: Path) -> None:
    hits = [o for o in objs if o["metadata"].get("name") == entry["name"]
            and o["kind"] in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")]
    if not hits:
        raise KustomizeError(f"{kfile}: replicas entry {entry['name']!r} matches nothing")
    for obj in hits:
        obj["spec"]["replicas"] = int(entry["count"])


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/repo/name:tag@sha256:...`` -> (name, tag, digest)."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        image, tag = image[:colon], image[colon + 1:]
    return image, tag, digest


def _set_images(objs: Iterable[Obj], entry: Obj, kfile: Path) -> None:
    unknown = set(entry) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"{kfile}: images fields outside the subset: {sorted(unknown)}")
    for obj in objs:
        for container in _containers(obj):
            name, tag, digest = split_image(container.get("image", ""))
            if name != entry["name"]:
                continue
            name = entry.get("newName", name)
            if "newTag" in entry:
                tag, digest = str(entry["newTag"]), None
            if "digest" in entry:
                tag, digest = None, entry["digest"]
            container["image"] = (name + (f":{tag}" if tag else "")
                                  + (f"@{digest}" if digest else ""))


def _containers(node: Any) -> Iterable[Obj]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _containers(value)
