"""Every kustomization under deploy/ renders, and the offline renderer agrees
with the real ``kubectl kustomize``.

The renderer (kustomize_kit.py) is checked three ways: against a golden
file that real kubectl (v1.37.1, kustomize v5.8.1) produced for a fixture
exercising every supported feature; against live ``kubectl kustomize`` for
every kustomization when a kubectl binary is available (``$KUBECTL`` or on
PATH); and by refusing kustomize features it does not implement.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from deploy_kit import DEPLOY, REPO, kustomization_dirs, rel, rendered
from kustomize_kit import KustomizeError, find_kustomizations, render, split_image

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED_DIRS = {"deploy/base", "deploy/minidfs", "deploy/overlays/minikube",
                 "deploy/overlays/kerberos-ha"}

pytestmark = pytest.mark.timeout(60)


def test_expected_kustomizations_exist() -> None:
    assert {rel(d) for d in kustomization_dirs()} >= EXPECTED_DIRS


@pytest.mark.parametrize("directory", [rel(d) for d in kustomization_dirs()])
def test_kustomization_renders(directory: str) -> None:
    objs = rendered(directory)
    assert objs, f"{directory} rendered nothing"
    for obj in objs:
        assert obj["metadata"].get("name"), f"{directory}: object without a name: {obj}"
        if obj["kind"] not in ("Namespace", "CSIDriver", "StorageClass", "ClusterRole",
                               "ClusterRoleBinding", "PersistentVolume"):
            assert obj["metadata"].get("namespace"), \
                f"{directory}: namespaced {obj['kind']}/{obj['metadata']['name']} has no namespace"


@pytest.mark.parametrize("directory", ["deploy/overlays/minikube", "deploy/overlays/kerberos-ha"])
def test_overlays_keep_the_whole_base(directory: str) -> None:
    base = {(o["kind"], o["metadata"]["name"]) for o in rendered("deploy/base")}
    overlay = {(o["kind"], o["metadata"]["name"]) for o in rendered(directory)}
    assert base <= overlay


def test_overlay_generators_replace_base_config() -> None:
    conf = {o["metadata"]["name"]: o for o in rendered("deploy/overlays/minikube")
            if o["kind"] == "ConfigMap"}
    assert "minidfs.hdfs-csi.svc.cluster.local" in conf["hadoop-conf"]["data"]["core-site.xml"]
    assert conf["hdfs-csi-config"]["data"]["HDFS_URI"].startswith("hdfs://minidfs.")
    base_conf = {o["metadata"]["name"]: o for o in rendered("deploy/base")
                 if o["kind"] == "ConfigMap"}
    assert "hdfs://mycluster" in base_conf["hadoop-conf"]["data"]["core-site.xml"]


def test_renderer_matches_kubectl_golden_file() -> None:
    """The fixture's expected output was produced by real ``kubectl kustomize``."""
    expected = [o for o in yaml.safe_load_all(
        (FIXTURES / "edge" / "overlay.expected.yaml").read_text()) if o]
    assert render(FIXTURES / "edge" / "overlay") == expected


def _kubectls() -> list[str]:
    """kubectl binaries to compare with: ``$KUBECTL`` (os.pathsep-separated)
    or the one on PATH, plus a ``kubectl.1.28`` beside it if there is one
    (Google Cloud SDK layout): 1.28 is the oldest release we support."""
    found = [p for p in os.environ.get("KUBECTL", "").split(os.pathsep) if p]
    on_path = shutil.which("kubectl")
    if not found and on_path:
        found = [on_path]
    if on_path:
        sibling = Path(os.path.realpath(on_path)).with_name("kubectl.1.28")
        if sibling.is_file() and os.access(sibling, os.X_OK):
            found.append(str(sibling))
    return list(dict.fromkeys(found))


LIVE_DIRS = ([rel(d) for d in kustomization_dirs()]
             + [rel(d) for d in find_kustomizations(FIXTURES / "edge")])


@pytest.mark.skipif(not _kubectls(), reason="no kubectl binary ($KUBECTL or PATH): "
                    "the golden-file test covers the renderer instead")
@pytest.mark.parametrize("kubectl", _kubectls() or ["none"])
def test_renderer_matches_live_kubectl(kubectl: str) -> None:
    for directory in LIVE_DIRS:
        out = subprocess.run([kubectl, "kustomize", str(REPO / directory)],
                             check=False, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"{kubectl} kustomize {directory}:\n{out.stderr}"
        theirs = [o for o in yaml.safe_load_all(out.stdout) if o]
        assert render(REPO / directory) == theirs, f"{kubectl} renders {directory} differently"


# -- the renderer refuses what it does not implement ----------------------------------------
def _kustomization(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "kustomization.yaml").write_text(textwrap.dedent(body))
    for name, text in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path


CM = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
data:
  a: b
"""


@pytest.mark.parametrize("body, message", [
    ("resources: [cm.yaml]\ncommonLabels: {a: b}\n", "outside the supported subset"),
    ("resources: [cm.yaml]\nnamePrefix: x-\n", "outside the supported subset"),
    ("configMapGenerator:\n- name: g\n  literals: [A=1]\n", "must disable the name hash"),
    ("resources: [https://github.com/example/repo]\n", "remote resource"),
    ("resources: [../outside.yaml]\n", "outside the kustomization root"),
    ("resources: [cm.yaml]\nlabels:\n- pairs: {a: b}\n  includeSelectors: true\n",
     "includeSelectors"),
    ("resources: [cm.yaml, cm.yaml]\n", "duplicate object"),
    ("resources: [cm.yaml]\npatches:\n- patch: '[{op: add, path: /x, value: 1}]'\n",
     "needs a target"),
    (("resources: [cm.yaml]\npatches:\n- patch: |\n    kind: ConfigMap\n    metadata: {name: cm}\n"
     "    ---\n    kind: ConfigMap\n    metadata: {name: cm}\n"), "exactly one document"),
])
def test_renderer_rejects_unsupported(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "outside.yaml").write_text(CM)
    root = tmp_path / "k"
    root.mkdir()
    _kustomization(root, body, {"cm.yaml": CM})
    with pytest.raises(KustomizeError, match=message):
        render(root)


def test_renderer_rejects_patch_matching_nothing(tmp_path: Path) -> None:
    _kustomization(tmp_path, "resources: [cm.yaml]\npatches:\n- path: p.yaml\n",
                   {"cm.yaml": CM, "p.yaml": CM.replace("name: cm", "name: other")})
    with pytest.raises(KustomizeError, match="matches no object"):
        render(tmp_path)


@pytest.mark.parametrize("image, parts", [
    ("busybox", ("busybox", None, None)),
    ("busybox:1.37.0", ("busybox", "1.37.0", None)),
    ("registry:5000/a/b", ("registry:5000/a/b", None, None)),
    ("registry:5000/a/b:v1@sha256:ab", ("registry:5000/a/b", "v1", "sha256:ab")),
])
def test_split_image(image: str, parts: tuple[str, str | None, str | None]) -> None:
    assert split_image(image) == parts


def test_deploy_tree_has_no_stray_manifests() -> None:
    """Every manifest under deploy/ is either reachable from a kustomization
    or an example; a file nobody renders is a file nobody tests."""
    reachable: set[Path] = set()
    for d in kustomization_dirs():
        k = yaml.safe_load((d / "kustomization.yaml").read_text())
        for entry in k.get("resources", []):
            reachable.add((d / entry).resolve())
        for p in k.get("patches", []):
            if "path" in p:
                reachable.add((d / p["path"]).resolve())
    for path in DEPLOY.rglob("*.yaml"):
        if path.name == "kustomization.yaml" or path.parent.name == "examples":
            continue
        assert path.resolve() in reachable, f"{rel(path)} is not used by any kustomization"
