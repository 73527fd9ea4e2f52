"""Kubelet paths opened one component at a time, and mounts made on the descriptors.

Checking a kubelet-given path for symlinks and then handing the *name* to
``mount(8)`` is a race: mount follows links, and whoever can write the parent
directory can swap an empty directory for a symlink in between.  Issue 13
measured it: flipping a target between an empty directory and a symlink won
11 of 150 publishes, and the volume was mounted outside the kubelet
directory.  kubelet's own subPath code (``pkg/volume/util/subpath``,
``doSafeOpen`` / ``doSafeMakeDir``) closes the same hole the way this module
does:

* **walk**: from the kubelet root a path lies under, every component is
  opened with ``openat(parent, name, O_PATH|O_NOFOLLOW)`` and checked with
  ``fstat``.  A symlink anywhere below the root is refused; the descriptors
  at the end are the directories themselves, whatever happens to the names
  afterwards.
* **mount**: a new mount is attached with ``move_mount(2)`` relative to the
  walked parent's descriptor, which never follows a symlink at the leaf
  (``mount(2)`` onto ``/proc/self/fd/N`` on kernels without the new mount
  API, as kubelet does), and read-only is set on the detached copy before it
  is attached, so a read-only target is never writable for an instant.  The
  path is then walked again: a mount that did not end up where the path says
  (a parent renamed away in between) is taken back at once and the call fails.
* **unmount**: ``umount2("/proc/self/fd/<parent>/<leaf>", UMOUNT_NOFOLLOW)``
  can only remove a mount at the leaf of the walked parent.
* **"is something mounted here"** compares mount ids of descriptors
  (``/proc/self/fdinfo``), not strings with the mount table, and nesting
  inside another hdfs-csi volume is found from the mounts a walk crosses,
  not from the strings the driver happens to have recorded.

The roots (``--kubelet-dir``) are trusted: resolved once at start-up, owned
by root.  Errors are domain errors (:mod:`csi_driver.errors`), raised here
once; a refused path is INVALID_ARGUMENT, a path that is not (or no longer)
what the operation needs is FAILED_PRECONDITION.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import platform
import stat
import time
from dataclasses import dataclass, field

from csi_driver.errors import FailedPrecondition, InvalidArgument, MountFailed
from csi_driver.paths import is_under
from fuse_mount import mounts
from fuse_mount.mounts import MountState

log = logging.getLogger(__name__)

#: fstype of every hdfs-csi FUSE mount (``subtype=hdfs`` in fuse_mount.adapter)
HDFS_FSTYPE = "fuse.hdfs"

_DEAD_ERRNOS = {errno.ENOTCONN, errno.ESTALE, errno.EIO, errno.ECONNABORTED}
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

# <linux/mount.h>, <linux/fcntl.h>
AT_EMPTY_PATH = 0x1000
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOUNT_ATTR_RDONLY = 0x1
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096
MNT_DETACH, UMOUNT_NOFOLLOW = 2, 8

# System calls numbered after 424 have one number on every architecture but
# alpha and mips (which we do not run on: there the old API is used).
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442
_NEW_API = not platform.machine().lower().startswith(("alpha", "mips"))

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _open_tree_clone(fd: int) -> int:
    return _check(_libc.syscall(_SYS_OPEN_TREE, ctypes.c_int(fd), b"",
                                ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC | AT_EMPTY_PATH)),
                  "open_tree")


def _set_read_only(tree: int) -> None:
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    _check(_libc.syscall(_SYS_MOUNT_SETATTR, ctypes.c_int(tree), b"",
                         ctypes.c_uint(AT_EMPTY_PATH), ctypes.byref(attr),
                         ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr")


def _move_mount(tree: int, parent: int, name: str) -> None:
    # No MOVE_MOUNT_T_SYMLINKS: a symlink at ``name`` is not followed (ENOTDIR).
    _check(_libc.syscall(_SYS_MOVE_MOUNT, ctypes.c_int(tree), b"", ctypes.c_int(parent),
                         os.fsencode(name), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)),
           "move_mount")


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(_libc.mount(os.fsencode(source) if source else None, os.fsencode(target), None,
                       ctypes.c_ulong(flags), None), "mount")


def umount2(path: str, flags: int) -> None:
    _check(_libc.umount2(os.fsencode(path), ctypes.c_int(flags)), "umount2")


def mount_id(fd: int) -> int:
    """The id of the mount ``fd`` lies on (the ``mnt_id`` of /proc/self/fdinfo)."""
    with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise OSError(errno.ENOTSUP, "/proc/self/fdinfo has no mnt_id")  # pragma: no cover


def _fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


@dataclass
class Walked:
    """A path opened component by component: its parent and (if it exists) its leaf."""

    path: str
    parent: int                      #: O_PATH descriptor of the parent directory
    name: str                        #: the leaf's name in the parent
    leaf: int | None                 #: O_PATH descriptor of the leaf; the top mount's root
    #: ids of the mounts the walk crossed, root to parent
    crossed: list[int] = field(default_factory=list)

    def close(self) -> None:
        self.close_leaf()
        if self.parent >= 0:
            os.close(self.parent)
            self.parent = -1

    def close_leaf(self) -> None:
        if self.leaf is not None:
            os.close(self.leaf)
            self.leaf = None

    def __enter__(self) -> "Walked":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def mounted(self) -> bool:
        """Something is mounted at the leaf (its mount differs from its parent's)."""
        return self.leaf is not None and mount_id(self.leaf) != mount_id(self.parent)

    def leaf_via_parent(self) -> str:
        """The leaf, named through the parent's descriptor: no parent can be swapped."""
        return f"{_fd_path(self.parent)}/{self.name}"


class ParentMissing(FailedPrecondition):
    """A directory on the way to the path does not exist (so nothing is mounted there)."""


class Anchor:
    """Operations on paths below trusted roots, each one anchored on descriptors."""

    def __init__(self, roots: tuple[str, ...] | list[str]):
        self.roots = tuple(roots)

    # -- walking -----------------------------------------------------------------------------
    def _root_of(self, path: str) -> str:
        roots = [r for r in self.roots if is_under(path, r) and path != r]
        if not roots:
            raise InvalidArgument(f"{path} is not below the kubelet directory "
                                  f"({', '.join(self.roots)})")
        return max(roots, key=len)

    def walk(self, path: str) -> Walked:
        """Open ``path``'s parent one component at a time from its root, and the leaf.

        Raises InvalidArgument for a symlink (or anything but a directory) on the
        way, :class:`ParentMissing` if a parent does not exist.  The leaf may be
        anything (or absent); callers check what they need.
        """
        root = self._root_of(path)
        parts = [p for p in path[len(root.rstrip("/")):].split("/") if p]
        try:
            fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ParentMissing(f"{root} does not exist") from None
        crossed = [mount_id(fd)]
        try:
            current = root
            for part in parts[:-1]:
                current = os.path.join(current, part)
                try:
                    nxt = os.open(part, _PATH_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    raise ParentMissing(f"{current} does not exist") from None
                except OSError as exc:
                    raise FailedPrecondition(f"cannot open {current}: {exc.strerror}") from None
                os.close(fd)
                fd = nxt
                try:
                    mode = os.fstat(fd).st_mode
                except OSError as exc:
                    raise FailedPrecondition(f"cannot stat {current}: {exc.strerror}") from None
                if stat.S_ISLNK(mode):
                    raise InvalidArgument(f"{path} goes through a symbolic link ({current}); "
                                          "refusing to follow it")
                if not stat.S_ISDIR(mode):
                    raise InvalidArgument(f"{path}: {current} is not a directory")
                crossed.append(mount_id(fd))
            try:
                leaf: int | None = os.open(parts[-1], _PATH_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                leaf = None
            except OSError as exc:
                raise FailedPrecondition(f"cannot open {path}: {exc.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        return Walked(path, fd, parts[-1], leaf, crossed)

    def _walk_or_none(self, path: str) -> Walked | None:
        try:
            return self.walk(path)
        except ParentMissing:
            return None

    # -- what is there -------------------------------------------------------------------------
    def state(self, path: str) -> MountState:
        w = self._walk_or_none(path)
        if w is None:
            return MountState.ABSENT
        with w:
            return _state(w)

    def nested_in(self, path: str) -> str | None:
        """The mountpoint of the hdfs-csi mount ``path`` lies inside, if any.

        Found from the mounts the walk to ``path``'s parent crossed (mount ids
        of descriptors), so a symlink, a bind mount or a mount the driver never
        recorded cannot hide it.
        """
        w = self._walk_or_none(path)
        if w is None:
            return None
        with w:
            crossed = set(w.crossed)
        for entry in mounts.mount_table():
            if entry.mount_id in crossed and entry.fstype == HDFS_FSTYPE:
                return entry.mountpoint
        return None

    # -- directories -----------------------------------------------------------------------------
    def is_dir(self, path: str) -> bool:
        """``path`` exists and is a directory (or has something mounted on it)."""
        w = self._walk_or_none(path)
        if w is None or w.leaf is None:
            if w is not None:
                w.close()
            return False
        with w:
            return w.mounted or stat.S_ISDIR(os.fstat(w.leaf).st_mode)

    def make_dir(self, path: str, what: str, mode: int = 0o750) -> bool:
        """Make sure ``path`` is a directory (not a symlink); True if it was created here."""
        with self.walk_existing(path, what) as w:
            if w.leaf is not None:
                if not w.mounted:
                    _require_dir(w.leaf, path, what)
                return False
            try:
                os.mkdir(w.name, mode, dir_fd=w.parent)
                created = True
            except FileExistsError:
                created = False
            try:
                w.leaf = os.open(w.name, _PATH_FLAGS | os.O_DIRECTORY, dir_fd=w.parent)
            except OSError:
                raise FailedPrecondition(f"{what} {path} was replaced while it was being "
                                         "created") from None
            return created

    def walk_existing(self, path: str, what: str) -> Walked:
        try:
            return self.walk(path)
        except ParentMissing:
            raise FailedPrecondition(f"the parent directory of {what} {path} does not "
                                     "exist") from None

    def remove_dir(self, path: str) -> None:
        """Remove the empty directory ``path`` (only through its walked parent)."""
        w = self._walk_or_none(path)
        if w is None:
            return
        with w:
            try:
                os.rmdir(w.name, dir_fd=w.parent)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    log.warning("not removing %s: it is not empty", path)
                elif exc.errno == errno.ENOTDIR:
                    log.warning("not removing %s: it is no longer a directory", path)
                else:
                    raise MountFailed(f"cannot remove {path}: {exc.strerror}") from None

    # -- mounting --------------------------------------------------------------------------------
    def bind(self, source: str, target: str, read_only: bool) -> None:
        """Bind the mount at ``source`` (a kubelet path) to the directory ``target``."""
        with self.walk(source) as src:
            if not src.mounted:
                raise MountFailed(f"{source} is not mounted; cannot bind it to {target}")
            assert src.leaf is not None
            self.attach(src.leaf, target, read_only)

    def attach(self, source_fd: int, target: str, read_only: bool) -> None:
        """Attach a copy of the mount at ``source_fd`` at the directory ``target``.

        Non-recursive, like ``mount --bind``.  The target must exist and have
        nothing mounted on it.
        """
        with self.walk_existing(target, "target") as w:
            if w.leaf is None:
                raise FailedPrecondition(f"{target} does not exist")
            if w.mounted:
                raise FailedPrecondition(f"something is already mounted at {target}")
            _require_dir(w.leaf, target, "target")
            if _NEW_API:
                try:
                    self._attach_new(source_fd, w, read_only)
                    return
                except OSError as exc:
                    if exc.errno != errno.ENOSYS:
                        raise _mount_error(exc, w) from None
            try:
                self._attach_legacy(source_fd, w, read_only)
            except OSError as exc:
                raise _mount_error(exc, w) from None

    def _attach_new(self, source_fd: int, w: Walked, read_only: bool) -> None:
        tree = _open_tree_clone(source_fd)
        try:
            remount_ro = False
            if read_only:
                try:
                    _set_read_only(tree)
                except OSError as exc:
                    if exc.errno != errno.ENOSYS:   # kernels 5.2-5.11: remount below
                        raise
                    remount_ro = True
            _move_mount(tree, w.parent, w.name)
            self._verify(w.path, tree)
            if remount_ro:
                _remount_read_only(_fd_path(tree), w.path)
        finally:
            os.close(tree)

    def _attach_legacy(self, source_fd: int, w: Walked, read_only: bool) -> None:
        """mount(2) onto /proc/self/fd/N, for kernels before 5.2 (no open_tree).

        Read-only takes a second call (a remount), so a read-only target is
        writable for that instant on these kernels.
        """
        assert w.leaf is not None
        _mount(_fd_path(source_fd), _fd_path(w.leaf), MS_BIND)
        top = self._verify_legacy(w, source_fd)
        try:
            if read_only:
                _remount_read_only(_fd_path(top), w.path)
        finally:
            os.close(top)

    def _verify_legacy(self, w: Walked, source_fd: int) -> int:
        """The new mount must be on top of ``w.path``; return a descriptor of it.

        mount(2) put it onto the walked directory wherever that is now; if the
        directory is no longer at the path (a parent renamed away), the mount
        is detached where it landed and the call fails.
        """
        assert w.leaf is not None
        try:
            top = os.open(w.leaf_via_parent(), _PATH_FLAGS)
        except OSError:
            top = -1
        try:
            if top >= 0 and mount_id(top) != mount_id(w.parent) and os.path.samestat(
                    os.fstat(top), os.fstat(source_fd)):
                return top
        except OSError:
            pass
        if top >= 0:
            os.close(top)
        try:
            where = os.readlink(_fd_path(w.leaf))   # where the walked directory is now
            umount2(where, MNT_DETACH | UMOUNT_NOFOLLOW)
        except OSError as exc:
            log.error("the mount for %s landed on a moved directory and could not be taken "
                      "back: %s", w.path, exc)
        raise FailedPrecondition(f"{w.path} was moved while it was being mounted; the mount "
                                 "has been taken back")

    def _verify(self, path: str, tree: int) -> None:
        """The mount ``tree`` must now be the top mount at ``path``; else take it back."""
        expected = mount_id(tree)
        try:
            with self.walk(path) as again:
                ok = again.leaf is not None and mount_id(again.leaf) == expected
        except (InvalidArgument, FailedPrecondition):
            ok = False
        if not ok:
            umount2(_fd_path(tree), MNT_DETACH)
            raise FailedPrecondition(f"{path} was moved or replaced while it was being "
                                     "mounted; the mount has been taken back")

    # -- unmounting ------------------------------------------------------------------------------
    def unmount(self, path: str, timeout: float = 10.0) -> None:
        """Unmount everything mounted at ``path`` (idempotent; absent is success).

        A dead FUSE mount, or one still busy after ``timeout``, is detached
        lazily (what ``fusermount3 -u -z`` / ``umount -l`` do).
        """
        deadline = time.monotonic() + timeout
        while True:
            w = self._walk_or_none(path)
            if w is None:
                return
            with w:
                if not w.mounted:
                    return
                lazy = _state(w) is MountState.DEAD or time.monotonic() > deadline
                w.close_leaf()          # an open descriptor would keep the mount busy
                try:
                    umount2(w.leaf_via_parent(), UMOUNT_NOFOLLOW | (MNT_DETACH if lazy else 0))
                    continue
                except OSError as exc:
                    # EINVAL: not a mountpoint (any more): look again, for a while
                    if exc.errno not in (errno.EBUSY, errno.EINVAL) or (
                            exc.errno == errno.EINVAL and time.monotonic() > deadline):
                        raise MountFailed(f"cannot unmount {path}: "
                                          f"{os.strerror(exc.errno)}") from None
            time.sleep(0.1)


def _state(w: Walked) -> MountState:
    if not w.mounted:
        return MountState.ABSENT
    assert w.leaf is not None
    try:
        os.fstatvfs(w.leaf)     # reaches the FUSE daemon (stat could be a cached answer)
        return MountState.HEALTHY
    except OSError as exc:
        if exc.errno not in _DEAD_ERRNOS:
            log.warning("statfs of mount %s failed: %s", w.path, exc)
        return MountState.DEAD


def _require_dir(fd: int, path: str, what: str) -> None:
    mode = os.fstat(fd).st_mode
    if stat.S_ISLNK(mode):
        raise FailedPrecondition(f"{what} {path} is a symbolic link; refusing to mount there")
    if not stat.S_ISDIR(mode):
        raise FailedPrecondition(f"{what} {path} exists and is not a directory")


def _remount_read_only(proc_path: str, path: str) -> None:
    try:
        _mount(None, proc_path, MS_REMOUNT | MS_BIND | MS_RDONLY)
    except OSError as exc:
        umount2(proc_path, MNT_DETACH)
        raise MountFailed(f"cannot make {path} read-only: {os.strerror(exc.errno)}") from None


def _mount_error(exc: OSError, w: Walked) -> Exception:
    """FAILED_PRECONDITION if the target was removed or replaced (a symlink, another
    directory) between the walk and the mount, which then mounted nothing; else an
    internal mount failure."""
    assert w.leaf is not None
    try:
        now = os.stat(w.name, dir_fd=w.parent, follow_symlinks=False)
        walked = os.fstat(w.leaf)
        replaced = (now.st_dev, now.st_ino) != (walked.st_dev, walked.st_ino)
    except OSError:
        replaced = True
    if replaced:
        return FailedPrecondition(f"{w.path} was removed or replaced while it was being mounted")
    return MountFailed(f"cannot mount at {w.path}: {os.strerror(exc.errno or 0)}")
