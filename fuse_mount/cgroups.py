"""Moving a mount's keeper out of the cgroup it was started in.

Why: in Kubernetes the keeper is started by the node plugin, so it lands in
the node plugin container's cgroup.  When that pod is deleted (a DaemonSet
restart, a new image) the runtime kills every process of the container's
cgroup, the keeper with them, and every FUSE connection of the node ends:
each running pod reading a volume gets ``ENOTCONN`` and keeps it, because
its bind mount still points at the dead connection.  A keeper in a cgroup of
its own is not part of the container any more: it survives, keeps serving,
and the node plugin's next pod adopts the mount from its state directory
(with ``hostPID``, the pid files mean the same thing to both pods).

Where to: the cgroup ``name`` (a relative path) below the root of each hierarchy this process
is in, created if missing.  A container's own ``/sys/fs/cgroup`` may show only
its own subtree, so each hierarchy is mounted afresh for the move (cgroup v1
has no namespaces: a fresh mount shows the whole hierarchy) and unmounted
again.  Under cgroup v2 a container has a cgroup namespace of its own, whose
root is the container's cgroup: the keeper first joins pid 1's (the host's,
with ``hostPID``), and where it cannot, the move fails and says why.
The memory of such a keeper and its daemon is no longer charged to the pod:
the cgroup ``name`` is where an operator limits it.
"""

from __future__ import annotations

import ctypes
import os
import re
import tempfile

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
MNT_DETACH = 2
CLONE_NEWCGROUP = 0x02000000
_COMPONENT = re.compile(r"[A-Za-z0-9_.-]+")


class CgroupMoveError(OSError):
    """The process could not be moved (the message says which hierarchy and why)."""


def hierarchies(pid: int | str = "self") -> list[tuple[str, str]]:
    """``(controllers, path)`` of each hierarchy ``pid`` is in (``""`` = cgroup v2).

    Named v1 hierarchies (``name=systemd``) are included: they hold no resources,
    but the kubelet finds a pod's processes in every mounted hierarchy, and when a
    pod is deleted it SIGKILLs whatever its ``name=systemd`` group still holds (on
    the first real cluster a keeper moved everywhere else died that way).
    """
    out = []
    with open(f"/proc/{pid}/cgroup") as fh:
        for line in fh:
            _num, controllers, path = line.rstrip("\n").split(":", 2)
            out.append((controllers, path))
    return out


def _mount(source: str, target: str, fstype: str, data: str | None) -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), 0,
                   data.encode() if data is not None else None) != 0:
        err = ctypes.get_errno()
        raise CgroupMoveError(err, f"mount -t {fstype} {data or ''}: {os.strerror(err)}")


def check_name(name: str) -> str:
    """``name`` if it is a relative cgroup path of plain components, else ValueError."""
    parts = name.split("/") if name else [""]
    if any(not _COMPONENT.fullmatch(p) or p in (".", "..") for p in parts):
        raise ValueError("a cgroup is a relative path of names made of letters, digits, "
                         f"'_', '.' and '-', got {name!r}")
    return name


def _make(root: str, name: str, cpuset: bool) -> str:
    """Create ``root/name`` level by level; a new cpuset group starts with no CPUs and
    no memory nodes (ENOSPC on the move), so it gets its parent's."""
    path = root
    for part in name.split("/"):
        parent, path = path, os.path.join(path, part)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            continue
        if cpuset:
            for knob in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(parent, knob)) as src:
                    value = src.read().strip()
                with open(os.path.join(path, knob), "w") as dst:
                    dst.write(value)
    return path


def _enter_init_cgroup_namespace() -> None:
    """Join pid 1's cgroup namespace (the host's, with ``hostPID``): a private one makes a
    fresh cgroup2 mount show the container's own cgroup as the root."""
    try:
        fd = os.open("/proc/1/ns/cgroup", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CgroupMoveError(exc.errno or 0, "this process has a cgroup namespace of its own "
                              f"and cannot open pid 1's: {exc.strerror}") from None
    try:
        if _libc.setns(fd, CLONE_NEWCGROUP) != 0:
            err = ctypes.get_errno()
            raise CgroupMoveError(err, "this process has a cgroup namespace of its own and "
                                  f"cannot join pid 1's: {os.strerror(err)}")
    finally:
        os.close(fd)


def _own_cgroup_namespace() -> bool:
    try:
        return os.readlink("/proc/self/ns/cgroup") != os.readlink("/proc/1/ns/cgroup")
    except OSError:
        return False


def move(name: str, pid: int | None = None) -> list[str]:
    """Move process ``pid`` (default: this one) into ``/<name>`` of every hierarchy it
    is in; returns the hierarchies.

    ``name`` is a relative path (``hdfs-csi-mounts``, ``kube/hdfs-csi-mounts``)
    of plain components (checked by :func:`check_name`, and by the option
    parsers): nothing is created anywhere but below a hierarchy's root.
    """
    check_name(name)
    moved = []
    who = os.getpid() if pid is None else pid
    if _own_cgroup_namespace():
        _enter_init_cgroup_namespace()
    for controllers, path in hierarchies(who):
        if path == f"/{name}":
            moved.append(controllers or "unified")
            continue
        where = tempfile.mkdtemp(prefix="hdfs-csi-cgroup-")
        try:
            if controllers.startswith("name="):
                _mount("cgroup", where, "cgroup", f"none,{controllers}")
            elif controllers:
                _mount("cgroup", where, "cgroup", controllers)
            else:
                _mount("cgroup2", where, "cgroup2", None)
            try:
                target = _make(where, name, "cpuset" in controllers.split(","))
                with open(os.path.join(target, "cgroup.procs"), "wb", buffering=0) as fh:
                    fh.write(str(who).encode())
            except OSError as exc:
                raise CgroupMoveError(exc.errno or 0, f"into {controllers or 'cgroup2'}:/{name}:"
                                      f" {exc.strerror}") from None
            finally:
                _libc.umount2(where.encode(), MNT_DETACH)
        finally:
            os.rmdir(where)
        moved.append(controllers or "unified")
    return moved
