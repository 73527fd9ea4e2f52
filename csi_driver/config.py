"""The driver's configuration, built once by the CLI and validated once.

Everything the services need to know about their environment is here, so
no module reads flags or environment variables on its own.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field

from csi_driver.errors import InvalidArgument
from fuse_mount import cgroups
from csi_driver.params import ON_DELETE_POLICIES, parse_cluster_uri
from csi_driver.paths import META_DIR, check_hdfs_path, check_local_path, in_meta_dir

DRIVER_NAME = "hdfs.csi.hdfs-csi.io"
MODES = ("controller", "node", "all")


@dataclass
class Config:
    endpoint: str
    node_id: str = ""
    mode: str = "all"
    driver_name: str = DRIVER_NAME
    hdfs_uri: str | None = None             #: default cluster for volumes that name none
    #: Further clusters volumes may name (StorageClass ``hdfsUri``, static PV
    #: ``hdfsUri``, the cluster in a ``v1:`` id).  With ``hdfs_uri`` they are the
    #: only clusters the driver ever connects to (see :mod:`csi_driver.scope`).
    extra_clusters: tuple[str, ...] = ()
    base_path: str | None = None            #: default parent of dynamic volume directories
    #: Further roots under which StorageClasses may put volumes.  A StorageClass
    #: basePath must be equal to or below ``base_path`` or one of these; the
    #: driver never creates or deletes anything anywhere else.
    extra_base_paths: tuple[str, ...] = ()
    hdfs_user: str | None = None            #: identity when a request carries none
    state_dir: str = "/var/lib/hdfs-csi"
    #: Local roots that staging and target paths must lie under.  kubelet only
    #: ever hands out paths below its root directory; anything else in a node
    #: request (``/etc``, ``/``) is refused.  The default adds the temporary
    #: directories (``$TMPDIR`` and the usual ``/tmp``, ``/var/tmp``, which
    #: a test harness may use even when the driver's ``$TMPDIR`` differs) so
    #: conformance suites work out of the box; a DaemonSet passes
    #: ``--kubelet-dir`` and gets exactly that root.
    kubelet_dirs: tuple[str, ...] = field(
        default_factory=lambda: tuple(dict.fromkeys(
            ("/var/lib/kubelet", tempfile.gettempdir(), "/tmp", "/var/tmp"))))
    default_capacity: int = 1024**3         #: CreateVolume without capacity_range
    max_capacity: int = 0                   #: 0 = no per-volume limit
    #: HDFS counts space quota in raw bytes (every replica).  A volume of
    #: capacity C gets a space quota of C * quota_replication, so a 10 GiB
    #: PVC holds 10 GiB of files written with this replication factor.
    quota_replication: int = 3
    on_delete: str = "delete"               #: policy when a StorageClass names none
    mount_command: tuple[str, ...] = field(
        default_factory=lambda: (sys.executable, "-m", "hdfs_csi", "mount"))
    mount_timeout: float = 60.0
    #: Each mount's keeper moves into this cgroup (``hdfs-csi mount --cgroup``),
    #: so the mounts outlive the node plugin's container; None = stay in it.
    mount_cgroup: str | None = None
    max_volumes_per_node: int = 0
    workers: int = 8
    grace_period: float = 10.0              #: SIGTERM: seconds to let in-flight calls finish

    @property
    def serves_controller(self) -> bool:
        return self.mode in ("controller", "all")

    @property
    def serves_node(self) -> bool:
        return self.mode in ("node", "all")

    @property
    def allowed_clusters(self) -> tuple[str, ...]:
        clusters = ((self.hdfs_uri,) if self.hdfs_uri else ()) + self.extra_clusters
        return tuple(dict.fromkeys(clusters))

    @property
    def base_roots(self) -> tuple[str, ...]:
        roots = ((self.base_path,) if self.base_path else ()) + self.extra_base_paths
        return tuple(dict.fromkeys(roots))

    def validate(self) -> "Config":
        """Normalise and check; raises ``ValueError`` with a message for the operator."""
        try:
            if self.mode not in MODES:
                raise InvalidArgument(f"--mode must be one of {', '.join(MODES)}")
            if not self.endpoint.startswith("unix://") or len(self.endpoint) <= len("unix://"):
                raise InvalidArgument("--endpoint must be unix:///absolute/path/csi.sock")
            check_local_path("--endpoint", self.endpoint[len("unix://"):])
            if self.serves_node and not self.node_id:
                raise InvalidArgument("--node-id is required for the node service")
            if len(self.node_id.encode()) > 256:
                raise InvalidArgument("--node-id must be at most 256 bytes")
            if self.hdfs_uri:
                self.hdfs_uri = parse_cluster_uri("--hdfs-uri", self.hdfs_uri)
            self.extra_clusters = tuple(parse_cluster_uri("--allowed-hdfs-uri", c)
                                        for c in self.extra_clusters)
            if self.base_path:
                self.base_path = check_hdfs_path("--base-path", self.base_path)
            self.extra_base_paths = tuple(check_hdfs_path("--allowed-base-path", p)
                                          for p in self.extra_base_paths)
            for root in self.base_roots:
                if in_meta_dir(root):
                    raise InvalidArgument(f"base path {root} is inside a {META_DIR} directory, "
                                          "where the driver keeps its own records")
            self.state_dir = check_local_path("--state-dir", os.path.abspath(self.state_dir))
            if not self.kubelet_dirs:
                raise InvalidArgument("--kubelet-dir must name at least one directory")
            self.kubelet_dirs = tuple(os.path.realpath(check_local_path("--kubelet-dir", d))
                                      for d in self.kubelet_dirs)
            if self.on_delete not in ON_DELETE_POLICIES:
                raise InvalidArgument(f"--on-delete must be one of {', '.join(ON_DELETE_POLICIES)}")
            if self.quota_replication < 1:
                raise InvalidArgument("--quota-replication must be at least 1")
            if self.default_capacity <= 0:
                raise InvalidArgument("--default-capacity must be positive")
            if self.max_capacity < 0:
                raise InvalidArgument("--max-capacity must not be negative")
            if self.max_capacity and self.default_capacity > self.max_capacity:
                raise InvalidArgument("--default-capacity exceeds --max-capacity")
            if self.workers < 1:
                raise InvalidArgument("--workers must be at least 1")
            if not self.mount_command:
                raise InvalidArgument("--mount-command must not be empty")
            if self.mount_cgroup is not None:
                try:
                    cgroups.check_name(self.mount_cgroup)
                except ValueError as exc:
                    raise InvalidArgument(f"--mount-cgroup: {exc}") from None
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def socket_path(self) -> str:
        return self.endpoint[len("unix://"):]
