"""``hdfs-csi driver``: flags (each with an environment-variable default).

Sidecar-based deployments pass ``--endpoint=$(CSI_ENDPOINT)`` and friends in
container args, DaemonSets often set only the environment; both work, flags
win.  :func:`build_parser` is what the deploy tests parse container args with.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from csi_driver.config import DRIVER_NAME, MODES, Config
from hdfs_csi_common.helpformat import DefaultsHelpFormatter
from hdfs_csi_common.logsetup import setup_logging
from hdfs_csi_common.units import parse_duration, parse_size

#: flag -> environment variable providing its default
ENV = {
    "endpoint": "CSI_ENDPOINT",
    "node_id": "NODE_ID",
    "mode": "DRIVER_MODE",
    "driver_name": "DRIVER_NAME",
    "hdfs_uri": "HDFS_URI",
    "allowed_hdfs_uri": "HDFS_ALLOWED_URIS",
    "base_path": "HDFS_BASE_PATH",
    "allowed_base_path": "HDFS_ALLOWED_BASE_PATHS",
    "hdfs_user": "HDFS_USER",
    "state_dir": "STATE_DIR",
    "kubelet_dir": "KUBELET_DIR",
    "default_capacity": "DEFAULT_CAPACITY",
    "max_capacity": "MAX_CAPACITY",
    "quota_replication": "QUOTA_REPLICATION",
    "on_delete": "ON_DELETE",
    "mount_command": "MOUNT_COMMAND",
    "mount_timeout": "MOUNT_TIMEOUT",
    "mount_cgroup": "MOUNT_CGROUP",
    "max_volumes_per_node": "MAX_VOLUMES_PER_NODE",
    "workers": "CSI_WORKERS",
    "grace_period": "GRACE_PERIOD",
    "log_level": "HDFS_CSI_LOG_LEVEL",
}

DEFAULT_MOUNT_COMMAND = f"{shlex.quote(sys.executable)} -m hdfs_csi mount"


def _env(dest: str, default: str | None) -> str | None:
    value = os.environ.get(ENV[dest])
    return value if value not in (None, "") else default


def register(parser: argparse.ArgumentParser) -> None:
    def add(flag: str, dest: str, default: str | None, help_text: str, **kw: object) -> None:
        value: object = _env(dest, default)
        if kw.get("action") == "append" and value is not None:
            value = [value]  # argparse appends to a list default
        parser.add_argument(flag, dest=dest, default=value,
                            help=f"{help_text} [env {ENV[dest]}]", **kw)  # type: ignore[arg-type]

    add("--endpoint", "endpoint", "unix:///csi/csi.sock", "gRPC endpoint (unix:///path)")
    add("--node-id", "node_id", "", "this node's id (required for --mode node/all)")
    add("--mode", "mode", "all", "services to run", choices=MODES)
    add("--driver-name", "driver_name", DRIVER_NAME, "CSI driver name")
    add("--hdfs-uri", "hdfs_uri", None, "default cluster, e.g. hdfs://namenode:8020")
    add("--allowed-hdfs-uri", "allowed_hdfs_uri", None,
        "comma-separated further clusters volumes may name (repeatable); the driver never "
        "connects to any other than these and --hdfs-uri", action="append")
    add("--base-path", "base_path", None,
        "default HDFS directory that holds dynamic volumes, e.g. /k8s/volumes")
    add("--allowed-base-path", "allowed_base_path", None,
        "comma-separated extra HDFS roots a StorageClass basePath may use (repeatable)",
        action="append")
    add("--hdfs-user", "hdfs_user", None,
        "HDFS user for calls whose request names none (simple auth)")
    add("--state-dir", "state_dir", "/var/lib/hdfs-csi",
        "node state, keytab files and caches (a hostPath on Kubernetes)")
    add("--kubelet-dir", "kubelet_dir", None,
        "comma-separated local roots that staging/target paths must be under (repeatable; "
        "default: /var/lib/kubelet, $TMPDIR, /tmp and /var/tmp)", action="append")
    add("--default-capacity", "default_capacity", "1Gi",
        "capacity of volumes created without capacity_range")
    add("--max-capacity", "max_capacity", "0", "largest volume allowed (0 = no limit)")
    add("--quota-replication", "quota_replication", "3",
        "HDFS space quota = capacity x this (HDFS counts every replica)")
    add("--on-delete", "on_delete", "delete",
        "what DeleteVolume does when the StorageClass names no onDelete",
        choices=("delete", "retain", "archive"))
    add("--mount-command", "mount_command", DEFAULT_MOUNT_COMMAND,
        "command that starts a FUSE mount (the hdfs-csi mount contract)")
    add("--mount-timeout", "mount_timeout", "60s", "how long a FUSE mount may take to come up")
    add("--mount-cgroup", "mount_cgroup", None,
        "cgroup (a relative path below each hierarchy's root) the FUSE mounts' keepers move to, so "
        "that they and the pods' volumes outlive this container (with hostPID on Kubernetes)")
    add("--max-volumes-per-node", "max_volumes_per_node", "0",
        "reported in NodeGetInfo (0 = no limit)")
    add("--workers", "workers", "8", "gRPC worker threads")
    add("--grace-period", "grace_period", "10s",
        "on SIGTERM, how long in-flight calls may take to finish")
    add("--log-level", "log_level", "INFO", "DEBUG, INFO, WARNING or ERROR")
    parser.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hdfs-csi driver", description="Run the hdfs-csi CSI driver.",
        formatter_class=DefaultsHelpFormatter)
    register(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    def listed(values: list[str] | None) -> list[str]:
        out: list[str] = []
        for item in values or []:
            out += [p.strip() for p in str(item).split(",") if p.strip()]
        return out

    extra = listed(args.allowed_base_path)
    clusters = listed(args.allowed_hdfs_uri)
    kubelet_dirs = listed(args.kubelet_dir)
    optional: dict[str, object] = {"kubelet_dirs": tuple(kubelet_dirs)} if kubelet_dirs else {}
    return Config(
        endpoint=args.endpoint,
        node_id=args.node_id or "",
        mode=args.mode,
        driver_name=args.driver_name,
        hdfs_uri=args.hdfs_uri or None,
        extra_clusters=tuple(clusters),
        base_path=args.base_path or None,
        extra_base_paths=tuple(extra),
        hdfs_user=args.hdfs_user or None,
        state_dir=args.state_dir,
        default_capacity=parse_size(args.default_capacity),
        max_capacity=parse_size(args.max_capacity),
        quota_replication=int(args.quota_replication),
        on_delete=args.on_delete,
        mount_command=tuple(shlex.split(args.mount_command)),
        mount_timeout=parse_duration(args.mount_timeout),
        mount_cgroup=args.mount_cgroup or None,
        max_volumes_per_node=int(args.max_volumes_per_node),
        workers=int(args.workers),
        grace_period=parse_duration(args.grace_period),
        **optional,  # type: ignore[arg-type]
    ).validate()


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, component="hdfs-csi-driver")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"hdfs-csi driver: {exc}", file=sys.stderr)
        return 2
    from csi_driver.server import serve

    return serve(config)
