"""Shared loading of the deploy tree for the deploy tests (rendered once per run)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from kustomize_kit import find_kustomizations, load_yaml_documents, render

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
EXAMPLES = DEPLOY / "examples"
DRIVER_NAME = "hdfs.csi.hdfs-csi.io"
DRIVER_IMAGE = "ghcr.io/hdfs-csi/hdfs-csi"
#: the same Dockerfile built with --build-arg EXTRAS=bench (the driver image leaves them out)
BENCH_IMAGE = "ghcr.io/hdfs-csi/hdfs-csi-bench"
DRIVER_TAG = "0.1.0"
KUBELET_DIR = "/var/lib/kubelet"
PLUGIN_DIR = f"{KUBELET_DIR}/plugins/{DRIVER_NAME}"

#: Workload kinds and where their pod spec lives.
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Notebook": ("spec", "template", "spec"),
}


def kustomization_dirs() -> list[Path]:
    return find_kustomizations(DEPLOY)


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@cache
def rendered(directory: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(REPO / directory))


def all_rendered() -> Iterator[tuple[str, dict[str, Any]]]:
    for d in kustomization_dirs():
        for obj in rendered(rel(d)):
            yield rel(d), obj


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


@cache
def example_objects() -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((rel(f), obj) for f in example_files() for obj in load_yaml_documents(f))


def find(objs: Any, kind: str, name: str | None = None) -> dict[str, Any]:
    hits = [o for o in objs if o["kind"] == kind
            and (name is None or o["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pod spec inside a workload (several for a PyTorchJob)."""
    if obj["kind"] == "PyTorchJob":
        return [r["template"]["spec"] for r in obj["spec"]["pytorchReplicaSpecs"].values()]
    path = POD_SPEC_PATHS.get(obj["kind"])
    if path is None:
        return []
    node: Any = obj
    for key in path:
        node = node[key]
    return [node]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for spec in pod_specs(obj)
            for c in spec.get("initContainers", []) + spec.get("containers", [])]


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    hits = [c for c in containers(obj) if c["name"] == name]
    assert len(hits) == 1, f"{obj['kind']}/{obj['metadata']['name']}: no container {name}"
    return hits[0]


def volume_for_mount(spec: dict[str, Any], mount: dict[str, Any]) -> dict[str, Any]:
    hits = [v for v in spec.get("volumes", []) if v["name"] == mount["name"]]
    assert len(hits) == 1, f"volumeMount {mount['name']} has no volume"
    return hits[0]


def mount_at(c: dict[str, Any], path: str) -> dict[str, Any]:
    hits = [m for m in c.get("volumeMounts", []) if m["mountPath"] == path]
    assert len(hits) == 1, f"container {c['name']} mounts nothing at {path}"
    return hits[0]


def flag_values(args: list[str], flag: str) -> list[str]:
    """Values of ``--flag=value`` / ``--flag value`` in a Go-style argument list."""
    out = []
    for i, arg in enumerate(args):
        for prefix in (flag, "-" + flag.lstrip("-")):
            if arg == prefix and i + 1 < len(args) and not args[i + 1].startswith("-"):
                out.append(args[i + 1])
            elif arg.startswith(prefix + "="):
                out.append(arg.split("=", 1)[1])
    return out


def env_value(c: dict[str, Any], name: str) -> str | None:
    for e in c.get("env", []):
        if e["name"] == name:
            return e.get("value")
    return None
