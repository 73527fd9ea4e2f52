"""Safe handling of every path the driver receives or builds.

Two kinds of paths reach the driver from outside:

* local paths (staging and target paths) chosen by kubelet, and
* HDFS paths derived from volume ids, StorageClass parameters and PV
  attributes.

Path traversal through exactly these fields is a known CVE class for CSI
drivers, so each one goes through a check here that rejects rather than
repairs: NUL bytes, ``..`` segments, relative paths and over-long values are
errors, and a derived path is accepted only after canonicalisation shows it
is still under the directory it must be under.
"""

from __future__ import annotations

import hashlib
import posixpath
import re

from csi_driver.errors import InvalidArgument

#: Linux PATH_MAX; longer local paths cannot be used by any syscall anyway.
MAX_LOCAL_PATH = 4096
#: HDFS allows longer paths, but no sane volume needs more.
MAX_HDFS_PATH = 2048
#: The driver's own directory inside every base path (volume records, archives):
#: never a base path, never a volume.
META_DIR = ".hdfs-csi"
#: Longest volume directory name we use verbatim; longer CSI names are hashed.
MAX_PLAIN_DIRNAME = 63
_PLAIN_DIRNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,%d}$" % (MAX_PLAIN_DIRNAME - 1))
_HASHED_DIRNAME = re.compile(r"^_[0-9a-f]{40}$")


def _common_checks(field: str, value: str, max_len: int) -> None:
    if not value:
        raise InvalidArgument(f"{field} is required")
    if "\x00" in value:
        raise InvalidArgument(f"{field} contains a NUL byte")
    if len(value.encode("utf-8", "surrogatepass")) > max_len:
        raise InvalidArgument(f"{field} is longer than {max_len} bytes")


def check_local_path(field: str, value: str) -> str:
    """Validate a kubelet-given absolute path and return it normalised.

    ``..`` is rejected instead of resolved: kubelet never sends one, so its
    presence means a broken or hostile caller.  Symlinks are not resolved
    here (the path may not exist yet); every use of the path walks it from
    its kubelet root and refuses a symlink (:mod:`csi_driver.anchored`).
    """
    _common_checks(field, value, MAX_LOCAL_PATH)
    if not value.startswith("/"):
        raise InvalidArgument(f"{field} must be an absolute path")
    if any(seg == ".." for seg in value.split("/")):
        raise InvalidArgument(f"{field} must not contain '..'")
    norm = posixpath.normpath(value)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if norm == "/":
        raise InvalidArgument(f"{field} must not be the root directory")
    return norm


def check_hdfs_path(field: str, value: str, *, allow_root: bool = False) -> str:
    """Validate an absolute HDFS path (no NUL, no ``..``) and normalise it."""
    _common_checks(field, value, MAX_HDFS_PATH)
    if not value.startswith("/"):
        raise InvalidArgument(f"{field} must be an absolute HDFS path")
    if any(seg == ".." for seg in value.split("/")):
        raise InvalidArgument(f"{field} must not contain '..'")
    if any(ch in value for ch in "\n\r"):
        raise InvalidArgument(f"{field} must not contain line breaks")
    norm = posixpath.normpath(value)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if norm == "/" and not allow_root:
        raise InvalidArgument(f"{field} must not be the HDFS root directory")
    # ':' is what HDFS refuses in path components (it reads as a scheme).
    if any(":" in seg for seg in norm.split("/")):
        raise InvalidArgument(f"{field} must not contain ':'")
    return norm


def is_under(path: str, base: str) -> bool:
    """True if normalised ``path`` equals ``base`` or lies below it."""
    base = base.rstrip("/") or "/"
    if base == "/":
        return path.startswith("/")
    return path == base or path.startswith(base + "/")


def in_meta_dir(path: str) -> bool:
    """True if the normalised HDFS ``path`` has a :data:`META_DIR` component."""
    return META_DIR in path.split("/")


def check_component(field: str, value: str, max_len: int = 255) -> str:
    """A single path component: no '/', not '.' or '..', no NUL."""
    _common_checks(field, value, max_len)
    if "/" in value or value in (".", "..") or ":" in value:
        raise InvalidArgument(f"{field} must be a single path component")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidArgument(f"{field} must not contain control characters")
    return value


def volume_dirname(name: str) -> str:
    """The directory name of the dynamic volume called ``name`` (a CSI name).

    Kubernetes names (``pvc-<uuid>``) are used verbatim so operators can find
    a PVC's data in HDFS.  Any other name (CSI allows nearly any Unicode up
    to 128 bytes, including '/' and '..') becomes ``_`` + 160 bits of its
    SHA-256: the leading underscore cannot start a verbatim name, so the two
    forms never collide.
    """
    if _PLAIN_DIRNAME.match(name) and name not in (".", ".."):
        return name
    return "_" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def is_volume_dirname(name: str) -> bool:
    return bool(_PLAIN_DIRNAME.match(name) or _HASHED_DIRNAME.match(name))
