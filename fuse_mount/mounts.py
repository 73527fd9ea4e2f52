"""Reading the mount table and telling a live FUSE mount from a dead one.

Used by the CSI node service (stage/publish/stats), the demo, the benchmarks
and the tests, so "is this path mounted, and does it still answer?" has one
answer everywhere.  A FUSE mount whose daemon died stays in the mount table
but every access fails with ENOTCONN ("Transport endpoint is not connected");
that state must be detected and cleaned up, never left behind.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

MOUNTINFO = "/proc/self/mountinfo"
_DEAD_ERRNOS = {errno.ENOTCONN, errno.ESTALE, errno.EIO, errno.ECONNABORTED}


class MountState(enum.Enum):
    ABSENT = "absent"      #: nothing mounted at the path
    HEALTHY = "healthy"    #: mounted and answering stat()
    DEAD = "dead"          #: in the mount table but the filesystem is gone (ENOTCONN...)


@dataclass(frozen=True)
class MountEntry:
    mount_id: int
    root: str          #: path inside the source filesystem (bind mounts show it)
    mountpoint: str
    options: tuple[str, ...]
    fstype: str
    source: str
    dev: str = ""      #: "major:minor" (names the FUSE connection and its bdi)

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_table() -> list[MountEntry]:
    entries = []
    with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            f = left.split()
            r = right.split()
            if len(f) < 6 or len(r) < 2:
                continue
            entries.append(MountEntry(
                mount_id=int(f[0]), root=_unescape(f[3]), mountpoint=_unescape(f[4]),
                options=tuple(f[5].split(",")), fstype=r[0], source=_unescape(r[1]),
                dev=f[2],
            ))
    return entries


def find_mount(path: str) -> MountEntry | None:
    """The topmost mount whose mountpoint is exactly ``path`` (no symlink resolution
    beyond the parent, since resolving a dead mountpoint itself fails)."""
    path = _canonical(path)
    found = None
    for entry in mount_table():
        if entry.mountpoint == path:
            found = entry  # later lines are mounted on top
    return found


def _canonical(path: str) -> str:
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    return os.path.join(os.path.realpath(parent), name)


def mount_state(path: str) -> MountState:
    """ABSENT, HEALTHY or DEAD.

    Probes with ``statvfs``, not ``stat``: the kernel answers ``stat`` of a FUSE
    mount from its attribute cache (for ``attr_timeout`` seconds) even after the
    daemon died, while ``statfs`` always reaches the daemon, so a dead mount is
    seen at once.  The hdfs-csi mount answers ``statfs`` without waiting on HDFS.
    """
    if find_mount(path) is None:
        return MountState.ABSENT
    try:
        os.statvfs(path)
        return MountState.HEALTHY
    except OSError as exc:
        if exc.errno in _DEAD_ERRNOS:
            return MountState.DEAD
        raise


def is_mounted(path: str) -> bool:
    return find_mount(path) is not None


def unmount(path: str, *, lazy_fallback: bool = True, timeout: float = 10.0) -> None:
    """Unmount ``path`` if mounted; a dead FUSE mount is detached lazily.

    Idempotent: an absent mount is success.  FUSE mounts go through
    ``fusermount3 -u`` (works without CAP_SYS_ADMIN); as root ``umount``
    also works and is the fallback for bind mounts.
    """
    deadline = time.monotonic() + timeout
    while find_mount(path) is not None:
        entry = find_mount(path)
        assert entry is not None
        cmds: list[list[str]] = []
        if entry.fstype.startswith("fuse") and shutil.which("fusermount3"):
            cmds.append(["fusermount3", "-u", "-q", path])
        cmds.append(["umount", path])
        ok = False
        for cmd in cmds:
            if _quiet(cmd) == 0:
                ok = True
                break
        if ok:
            continue
        if time.monotonic() > deadline or mount_state(path) == MountState.DEAD:
            if not lazy_fallback:
                raise OSError(errno.EBUSY, f"cannot unmount {path}")
            lazy = (["fusermount3", "-u", "-z", "-q", path]
                    if entry.fstype.startswith("fuse") and shutil.which("fusermount3")
                    else ["umount", "-l", path])
            if _quiet(lazy) != 0:
                _quiet(["umount", "-l", path])
            if find_mount(path) is not None and find_mount(path) == entry:
                raise OSError(errno.EBUSY, f"cannot unmount {path}")
            continue
        time.sleep(0.1)


def unmount_under(directory: str) -> tuple[list[str], list[str]]:
    """Unmount every mount at or below ``directory``, deepest first.

    For clean-up paths (demo, benchmarks) that must never leave a mount
    behind nor ``rmtree`` into one.  Returns ``(found, still_mounted)``.
    """
    prefix = os.path.realpath(directory).rstrip(os.sep) + os.sep

    def under() -> list[str]:
        return [e.mountpoint for e in mount_table()
                if (e.mountpoint + os.sep).startswith(prefix)]

    found = under()
    for mountpoint in sorted(found, key=len, reverse=True):
        try:
            unmount(mountpoint)
        except OSError as exc:
            log.warning("cannot unmount %s: %s", mountpoint, exc)
    return found, under()


def _quiet(cmd: list[str]) -> int:
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          check=False).returncode


def wait_mounted(path: str, timeout: float = 10.0, *, fstype_prefix: str = "fuse") -> bool:
    """Wait until a healthy mount of the given type is at ``path``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = find_mount(path)
        if entry is not None and entry.fstype.startswith(fstype_prefix):
            if mount_state(path) == MountState.HEALTHY:
                return True
        time.sleep(0.05)
    return False


def fuse_unavailable_reason() -> str | None:
    """None if this machine can FUSE-mount, else why not (a precise skip reason)."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist (no FUSE kernel module or not exposed to this container)"
    try:
        fd = os.open("/dev/fuse", os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        return f"/dev/fuse cannot be opened: {exc.strerror}"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian package fuse3)"
    return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants: a kept mount is a keeper and its serving daemon,
    so what a mount costs (CPU, memory) is the sum over both."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out
