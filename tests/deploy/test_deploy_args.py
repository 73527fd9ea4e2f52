"""Container arguments match the real command-line interfaces.

Every container that runs the hdfs-csi image has its args parsed by the
component's own argparse parser (``csi_driver.cli.build_parser()`` for the
driver, the ``hdfs-csi`` dispatcher for minidfs and bench), so a renamed or
misspelled flag fails here, not in a CrashLoopBackOff.  The values are then
checked against the rest of the manifest: the socket the driver listens on is
the one the sidecars and kubelet use, the state directory is on the host, the
driver name is the CSIDriver's.  Sidecar (Go) flags are checked against the
flags their pinned releases document.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
from collections.abc import Callable
from typing import Any

import pytest
from deploy_kit import (
    BENCH_IMAGE,
    DRIVER_IMAGE,
    DRIVER_NAME,
    PLUGIN_DIR,
    all_rendered,
    container,
    containers,
    example_objects,
    find,
    flag_values,
    mount_at,
    pod_specs,
    rendered,
    volume_for_mount,
)

pytestmark = pytest.mark.timeout(60)

WORKLOADS = [(src, o) for src, o in list(all_rendered()) + list(example_objects())
             if pod_specs(o)]


def _hdfs_csi_containers() -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    out = []
    for src, obj in WORKLOADS:
        for spec in pod_specs(obj):
            for c in spec.get("initContainers", []) + spec["containers"]:
                if c["image"].split(":")[0].split("@")[0] in (DRIVER_IMAGE, BENCH_IMAGE):
                    out.append((f"{src}:{obj['kind']}/{obj['metadata']['name']}/{c['name']}",
                                obj, spec, c))
    return out


HDFS_CSI = _hdfs_csi_containers()


def _parser(module: str, factory: Callable[[], argparse.ArgumentParser]) -> argparse.ArgumentParser:
    # the project's own modules must import: a broken import fails here, never skips
    return factory()


def _driver_parser() -> argparse.ArgumentParser:
    return importlib.import_module("csi_driver.cli").build_parser()


def _subcommand_parser(name: str) -> argparse.ArgumentParser:
    from hdfs_csi import cli

    return _parser(f"hdfs-csi {name}", lambda: cli.build_parser(only=name))


def _parse(parser: argparse.ArgumentParser, args: list[str]) -> argparse.Namespace:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"arguments rejected by the real parser: {args}\n{err.getvalue()}")


def test_every_hdfs_csi_container_runs_a_known_subcommand() -> None:
    assert HDFS_CSI, "no container runs the hdfs-csi image"
    from hdfs_csi.cli import SUBCOMMANDS

    for ident, _obj, _spec, c in HDFS_CSI:
        assert "command" not in c, f"{ident}: keep the image ENTRYPOINT (hdfs-csi)"
        assert c.get("args") and c["args"][0] in SUBCOMMANDS, f"{ident}: args {c.get('args')}"


DRIVERS = [(i, o, s, c) for i, o, s, c in HDFS_CSI if c["args"][0] == "driver"]


@pytest.mark.parametrize("ident, obj, spec, c", DRIVERS, ids=[d[0] for d in DRIVERS])
def test_driver_args_parse_and_fit_the_pod(ident: str, obj: dict[str, Any],
                                           spec: dict[str, Any], c: dict[str, Any]) -> None:
    ns = _parse(_driver_parser(), c["args"][1:])
    assert ns.driver_name == DRIVER_NAME
    assert ns.mode == {"Deployment": "controller", "DaemonSet": "node"}[obj["kind"]]

    # The socket lives in the directory the sidecars share.
    assert ns.endpoint.startswith("unix:///"), ns.endpoint
    sock = ns.endpoint[len("unix://"):]
    sock_dir = sock.rsplit("/", 1)[0]
    mount = mount_at(c, sock_dir)
    for sidecar in spec["containers"]:
        if sidecar is c:
            continue
        assert flag_values(sidecar.get("args", []), "--csi-address") == [sock], sidecar["name"]
        assert mount_at(sidecar, sock_dir)["name"] == mount["name"], sidecar["name"]

    # --node-id comes from the downward API.
    assert ns.node_id == "$(NODE_ID)"
    node_id = next(e for e in c["env"] if e["name"] == "NODE_ID")
    assert node_id["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"

    if obj["kind"] == "DaemonSet":
        # The state directory (mount records, keytabs, caches) must outlive the pod.
        state = volume_for_mount(spec, mount_at(c, ns.state_dir))
        assert state["hostPath"]["path"] == ns.state_dir
        # kubelet reaches the socket at the registration path on the host.
        assert volume_for_mount(spec, mount)["hostPath"]["path"] == PLUGIN_DIR


def test_driver_config_map_keys_are_driver_environment_variables() -> None:
    cli = importlib.import_module("csi_driver.cli")
    known = set(cli.ENV.values())
    for directory in ("deploy/base", "deploy/overlays/minikube", "deploy/overlays/kerberos-ha"):
        cm = find(rendered(directory), "ConfigMap", "hdfs-csi-config")
        unknown = set(cm["data"]) - known
        assert not unknown, f"{directory}: {unknown} unknown to the driver"
    for _ident, _obj, _spec, c in DRIVERS:
        assert [e["configMapRef"]["name"] for e in c["envFrom"]] == ["hdfs-csi-config"]


MINIDFS = [(i, o, s, c) for i, o, s, c in HDFS_CSI if c["args"][0] == "minidfs"]


@pytest.mark.parametrize("ident, obj, spec, c", MINIDFS, ids=[d[0] for d in MINIDFS])
def test_minidfs_args_parse(ident: str, obj: dict[str, Any], spec: dict[str, Any],
                            c: dict[str, Any]) -> None:
    ns = _parse(_subcommand_parser("minidfs"), c["args"])
    served = {p["containerPort"] for p in c["ports"]}
    assert int(ns.port) in served
    assert mount_at(c, ns.data_dir)


BENCH = [(i, o, s, c) for i, o, s, c in HDFS_CSI if c["args"][0] == "bench"]


def test_the_bench_runs_from_the_bench_image_and_nothing_else_does() -> None:
    """The driver image has no benchmark libraries: `hdfs-csi bench` needs the bench image."""
    assert BENCH, "deploy/examples has a bench Job"
    for ident, _obj, _spec, c in HDFS_CSI:
        image = c["image"].split(":")[0].split("@")[0]
        wanted = BENCH_IMAGE if c["args"][0] == "bench" else DRIVER_IMAGE
        assert image == wanted, f"{ident} runs {c['args'][0]} from {image}"


@pytest.mark.parametrize("ident, obj, spec, c", BENCH, ids=[d[0] for d in BENCH])
def test_bench_args_parse_and_measure_the_mounted_claim(ident: str, obj: dict[str, Any],
                                                        spec: dict[str, Any],
                                                        c: dict[str, Any]) -> None:
    ns = _parse(_subcommand_parser("bench"), c["args"])
    assert ns.mountpoint, "the Job measures a CSI mount: --mountpoint"
    assert ns.hdfs_uri is None
    volume = volume_for_mount(spec, mount_at(c, ns.mountpoint))
    assert "persistentVolumeClaim" in volume
    for path in (ns.data_dir, ns.work_dir):
        assert any(path.startswith(m["mountPath"] + "/") for m in c["volumeMounts"]), path


# -- sidecars --------------------------------------------------------------------------------
#: Flags each pinned sidecar release documents (README / --help); anything
#: else in our args is a typo the Go flag parser would exit on.
SIDECAR_FLAGS = {
    "csi-provisioner": {
        "--csi-address", "--leader-election", "--leader-election-namespace",
        "--leader-election-lease-duration", "--leader-election-renew-deadline",
        "--leader-election-retry-period", "--timeout", "--extra-create-metadata", "--v",
        "--worker-threads", "--retry-interval-start", "--retry-interval-max",
        "--http-endpoint", "--metrics-path", "--feature-gates", "--default-fstype",
        "--strict-topology", "--immediate-topology", "--enable-capacity",
        "--capacity-ownerref-level", "--kube-api-qps", "--kube-api-burst", "--kubeconfig",
        "--volume-name-prefix", "--volume-name-uuid-length", "--node-deployment",
        "--prevent-volume-mode-conversion", "--controller-publish-readonly",
    },
    "csi-resizer": {
        "--csi-address", "--leader-election", "--leader-election-namespace",
        "--leader-election-lease-duration", "--leader-election-renew-deadline",
        "--leader-election-retry-period", "--timeout", "--v", "--workers",
        "--handle-volume-inuse-error", "--http-endpoint", "--metrics-path",
        "--kube-api-qps", "--kube-api-burst", "--kubeconfig", "--retry-interval-start",
        "--retry-interval-max", "--feature-gates", "--extra-modify-metadata",
    },
    "csi-node-driver-registrar": {
        "--csi-address", "--kubelet-registration-path", "--v", "--http-endpoint",
        "--timeout", "--mode", "--plugin-registration-path",
    },
    "livenessprobe": {
        "--csi-address", "--health-port", "--http-endpoint", "--probe-timeout", "--v",
        "--metrics-address", "--metrics-path",
    },
}
REQUIRED_FLAGS = {
    "csi-provisioner": {"--csi-address", "--leader-election", "--extra-create-metadata",
                        "--timeout"},
    "csi-resizer": {"--csi-address", "--leader-election", "--handle-volume-inuse-error"},
    "csi-node-driver-registrar": {"--csi-address", "--kubelet-registration-path"},
    "livenessprobe": {"--csi-address", "--health-port"},
}

SIDECARS = [(f"{src}:{o['metadata']['name']}/{c['name']}", o, c)
            for src, o in all_rendered() for c in containers(o)
            if c["image"].startswith("registry.k8s.io/sig-storage/")]


def _sidecar(c: dict[str, Any]) -> str:
    return c["image"].split("/")[-1].split(":")[0]


@pytest.mark.parametrize("ident, obj, c", SIDECARS, ids=[s[0] for s in SIDECARS])
def test_sidecar_flags_exist(ident: str, obj: dict[str, Any], c: dict[str, Any]) -> None:
    kind = _sidecar(c)
    assert kind in SIDECAR_FLAGS, f"unknown sidecar {kind}"
    flags = {a.split("=", 1)[0] for a in c["args"] if a.startswith("-")}
    flags = {f if f.startswith("--") else "-" + f for f in flags}
    assert flags <= SIDECAR_FLAGS[kind], flags - SIDECAR_FLAGS[kind]
    assert REQUIRED_FLAGS[kind] <= flags


def test_registrar_registers_the_driver_socket() -> None:
    ds = find(rendered("deploy/base"), "DaemonSet")
    registrar = container(ds, "node-driver-registrar")
    path = flag_values(registrar["args"], "--kubelet-registration-path")
    assert path == [f"{PLUGIN_DIR}/csi.sock"]
    probe = registrar["livenessProbe"]["exec"]["command"]
    assert f"--kubelet-registration-path={PLUGIN_DIR}/csi.sock" in probe
    assert "--mode=kubelet-registration-probe" in probe
    reg = volume_for_mount(pod_specs(ds)[0], mount_at(registrar, "/registration"))
    assert reg["hostPath"]["path"] == "/var/lib/kubelet/plugins_registry"


@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet"])
def test_liveness_probe_targets_the_livenessprobe_sidecar(kind: str) -> None:
    obj = next(o for o in rendered("deploy/base") if o["kind"] == kind
           and o["metadata"]["name"].startswith("hdfs-csi"))
    driver = container(obj, "hdfs-csi-driver")
    probe = driver["livenessProbe"]["httpGet"]
    port = {p["name"]: p["containerPort"] for p in driver["ports"]}[probe["port"]]
    sidecar = container(obj, "liveness-probe")
    assert flag_values(sidecar["args"], "--health-port") == [str(port)]
    assert probe["path"] == "/healthz"


WARMUP = [(i, o, s, c) for i, o, s, c in HDFS_CSI if c["args"][0] == "warmup"]


def test_the_warmup_job_exists() -> None:
    assert WARMUP, "deploy/examples has a warm-up Job"


@pytest.mark.parametrize("ident, obj, spec, c", WARMUP, ids=[d[0] for d in WARMUP])
def test_warmup_args_parse_and_read_a_mounted_claim(ident: str, obj: dict[str, Any],
                                                    spec: dict[str, Any],
                                                    c: dict[str, Any]) -> None:
    ns = _parse(_subcommand_parser("warmup"), c["args"])
    assert ns.paths and ns.max_bytes, "a path to warm and a bound (the volume's cacheSize)"
    for path in ns.paths:
        mounts = [m for m in c["volumeMounts"]
                  if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
        assert mounts, f"{path} is on no volume of the container"
        volume = volume_for_mount(spec, max(mounts, key=lambda m: len(m["mountPath"])))
        assert "persistentVolumeClaim" in volume, f"{path} is not on a claimed volume"
