"""Writing Hadoop ``core-site.xml`` / ``hdfs-site.xml`` for clients of a test cluster.

Why files: the FUSE mount daemons and the CSI driver take their HDFS
configuration the way every Hadoop client does, from ``HADOOP_CONF_DIR``
(hdfs-native reads it when no ``config_dir`` is given), so an HA cluster
is only reachable by name through such a directory.
"""

from __future__ import annotations

import os
from xml.sax.saxutils import escape

#: keys that belong in core-site.xml; everything else goes to hdfs-site.xml
CORE_PREFIXES = ("fs.", "hadoop.", "io.", "ipc.")


def render(conf: dict[str, str]) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<configuration>"]
    for key in sorted(conf):
        lines.append(f"  <property><name>{escape(key)}</name>"
                     f"<value>{escape(str(conf[key]))}</value></property>")
    lines.append("</configuration>")
    return "\n".join(lines) + "\n"


def write_conf_dir(path: str, conf: dict[str, str]) -> str:
    """Write both files into ``path`` (created); return ``path``."""
    os.makedirs(path, exist_ok=True)
    core = {k: v for k, v in conf.items() if k.startswith(CORE_PREFIXES)}
    hdfs = {k: v for k, v in conf.items() if k not in core}
    for name, part in (("core-site.xml", core), ("hdfs-site.xml", hdfs)):
        target = os.path.join(path, name)
        tmp = target + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(render(part))
        os.replace(tmp, target)
    return path
