"""Splitting ``hdfs://nameservice[:port]/some/path`` into cluster and path."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 8020


@dataclass(frozen=True)
class HdfsLocation:
    scheme: str       #: "hdfs" or "viewfs"
    authority: str    #: "host:port" or a nameservice id (HA)
    path: str         #: normalised absolute path, "/" at least

    @property
    def cluster_uri(self) -> str:
        return f"{self.scheme}://{self.authority}"

    def __str__(self) -> str:
        return f"{self.cluster_uri}{self.path}"


def parse_hdfs_uri(uri: str) -> HdfsLocation:
    """Parse and normalise; raise ``ValueError`` on anything that is not HDFS.

    ``..`` segments are rejected rather than resolved: a URI coming from a
    StorageClass or PV that tries to climb is a mistake or an attack, and
    silently resolving it would hide both.
    """
    if "\x00" in uri:
        raise ValueError("HDFS URI contains a NUL byte")
    parts = urlsplit(uri)
    if parts.scheme not in ("hdfs", "viewfs"):
        raise ValueError(f"not an hdfs:// or viewfs:// URI: {uri!r}")
    if not parts.netloc:
        raise ValueError(f"HDFS URI has no host or nameservice: {uri!r}")
    # HDFS authorities are host[:port] or a nameservice id; user info ("alice@nn")
    # or whitespace there is a mistake or an attempt to smuggle something in.
    if any(ch in parts.netloc for ch in "@\\ \t\r\n"):
        raise ValueError(f"HDFS URI has a malformed host or nameservice: {uri!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"HDFS URI must not have a query or fragment: {uri!r}")
    path = parts.path or "/"
    if any(seg == ".." for seg in path.split("/")):
        raise ValueError(f"HDFS path must not contain '..': {uri!r}")
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return HdfsLocation(parts.scheme, parts.netloc, path)
