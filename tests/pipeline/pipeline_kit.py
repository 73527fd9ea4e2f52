"""The Python scripts inside the ``spark-*.yaml`` example manifests, for the tests."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
#: manifest file -> (ConfigMap name, script key)
SCRIPTS = {
    "spark-job.yaml": ("spark-ctr-etl", "ctr_etl.py"),
    "spark-pytorchjob.yaml": ("ctr-train-torch", "train_ctr_torch.py"),
    "spark-tf-job.yaml": ("ctr-train-tf", "train_ctr_tf.py"),
}


#: what the definitions may import (not Spark, torch or TensorFlow)
SAFE_IMPORTS = {"hashlib", "json", "os", "struct", "numpy", "sys", "time", "glob"}


def script(manifest: str) -> str:
    name, key = SCRIPTS[manifest]
    for doc in yaml.safe_load_all((EXAMPLES / manifest).read_text()):
        if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == name:
            return str(doc["data"][key])
    raise AssertionError(f"{manifest}: no ConfigMap {name}")


def definitions(manifest: str, *names: str) -> dict[str, Any]:
    """The script's module-level constants and the named functions, without running the
    rest (which needs Spark, a GPU or a mounted volume)."""
    tree = ast.parse(script(manifest))
    keep: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            if all(a.name in SAFE_IMPORTS for a in node.names):
                keep.append(node)
        elif isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            if not any(isinstance(n, ast.Name) and n.id == "os" for n in ast.walk(node.value)):
                keep.append(node)
        elif isinstance(node, ast.FunctionDef) and node.name in names:
            keep.append(node)
    ns: dict[str, Any] = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), manifest, "exec"), ns)  # noqa: S102
    missing = [n for n in names if n not in ns]
    assert not missing, f"{manifest}: no function {missing}"
    return ns
