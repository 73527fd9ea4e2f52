"""What the driver may touch: which clusters, and where dynamic volumes may live.

The controller and the node apply the same rules, from the same
configuration, because a volume id is only a string: whoever can write a PV
can write any ``v1:`` id.  A node that trusted the id mounted, read-write, a
crafted id's directory outside the base path, and connected to whatever
cluster the id named (issue 13).  So, on both sides:

* **clusters**: ``--hdfs-uri`` and every ``--allowed-hdfs-uri``, compared in
  canonical form (``hdfs://authority``); anything else is refused before a
  connection is made.  Static volumes may name any directory of an allowed
  cluster (datasets live outside the base path), dynamic ones may not;
* **dynamic volume directories** (``v1:`` ids) lie in a base path: equal to or
  below ``--base-path`` or one of ``--allowed-base-path``, and never inside the
  driver's own ``.hdfs-csi`` metadata directory (its records and archives).
"""

from __future__ import annotations

from csi_driver.config import Config
from csi_driver.errors import InvalidArgument
from csi_driver.paths import META_DIR, in_meta_dir, is_under
from csi_driver.volumes import VolumeRef


def check_cluster(config: Config, cluster_uri: str) -> str:
    """``cluster_uri`` (canonical) if the driver may use it; INVALID_ARGUMENT otherwise."""
    allowed = config.allowed_clusters
    if cluster_uri not in allowed:
        shown = ", ".join(allowed) if allowed else "none: the driver has no --hdfs-uri"
        raise InvalidArgument(f"cluster {cluster_uri} is not one this driver may use "
                              f"(allowed: {shown}; add it with --allowed-hdfs-uri)")
    return cluster_uri


def check_base_path(config: Config, base: str) -> str:
    """A base path for dynamic volumes: under an allowed root, not in the metadata."""
    roots = config.base_roots
    if not any(is_under(base, root) for root in roots):
        shown = ", ".join(roots) if roots else "none: the driver has no --base-path"
        raise InvalidArgument(f"base path {base} is outside the driver's allowed base paths "
                              f"({shown})")
    if in_meta_dir(base):
        raise InvalidArgument(f"base path {base} is inside the driver's own {META_DIR} "
                              "directory")
    return base


def check_dynamic(config: Config, ref: VolumeRef) -> VolumeRef:
    """A ``v1:`` id names a directory the driver could have made, on a cluster it may use."""
    check_cluster(config, ref.cluster_uri)
    try:
        check_base_path(config, ref.base_path)
    except InvalidArgument as exc:
        raise InvalidArgument(f"volume_id names a directory outside the driver's volumes: "
                              f"{exc}") from None
    return ref
