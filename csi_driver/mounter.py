"""The few mount operations the node service needs, behind a small interface.

* :meth:`Mounter.mount_fuse` starts one FUSE filesystem for a staged volume by
  running the ``hdfs-csi mount`` command, which daemonizes (double fork +
  setsid) and returns only once the mount answers.  The daemon is therefore
  never a child of the gRPC process, and a restart of the node service
  leaves every mount serving.  The helper mounts at a private directory of
  the state directory (``<state-dir>/fuse/<key>``), which no pod can reach;
  the driver then moves a copy of that mount onto the staging path by
  descriptor and detaches the private one.  A mount made by another process
  onto a kubelet-given *name* could be redirected by a symlink swapped in
  while the helper starts (issue 13); see :mod:`csi_driver.anchored`.
* :meth:`Mounter.bind` exposes the staged mount at a pod's target path,
  read-only from the first instant when asked.
* :meth:`Mounter.unmount` and :meth:`Mounter.state` look at what the walked
  path *is* (descriptors, mount ids), so a swapped parent can neither hide
  our mount nor make us unmount someone else's.

Every argument the driver puts on the mount helper's command line goes
through :meth:`FuseMountSpec.command_args`, which refuses any value that the
helper's option parser could read as an option.

Tests substitute another implementation only where the real one cannot be
used; the node core never runs a mount command itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from csi_driver.anchored import MNT_DETACH, Anchor, umount2
from csi_driver.errors import InvalidArgument, MountFailed, Unavailable
from fuse_mount import mounts
from fuse_mount.mounts import MountState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FuseMountSpec:
    source_uri: str                 #: hdfs://authority/path
    mountpoint: str                 #: the private directory the helper mounts at
    read_only: bool
    option_args: tuple[str, ...] = ()     #: --cache-size ... (from MountOptions)
    identity_args: tuple[str, ...] = field(default=(), repr=False)
    cache_dir: str | None = None
    pid_file: str | None = None
    log_file: str | None = None
    #: the kubelet path the mount is moved to (staging path, or an inline volume's target)
    target: str | None = None

    def command_args(self) -> list[str]:
        """The helper's arguments: positionals, then ``--flag value`` pairs.

        No value may start with ``-``: an option parser would read it as an
        option (a principal ``-h`` once made the helper print its usage into
        the CSI error).  Values are validated where they are parsed; this is
        the one place that makes the guarantee hold for every value, whatever
        a parser missed.
        """
        args = [self.source_uri, self.mountpoint]
        if self.read_only:
            args.append("--read-only")
        pairs: list[str] = []
        if self.cache_dir:
            pairs += ["--cache-dir", self.cache_dir]
        pairs += list(self.option_args)
        pairs += list(self.identity_args)
        if self.pid_file:
            pairs += ["--pid-file", self.pid_file]
        if self.log_file:
            pairs += ["--log-file", self.log_file]
        if len(pairs) % 2 or any(not f.startswith("--") for f in pairs[::2]):
            raise AssertionError(f"mount options must be --flag value pairs: {pairs[::2]}")
        for value in [self.source_uri, self.mountpoint] + pairs[1::2]:
            if not value or value.startswith("-"):
                raise InvalidArgument("a value for the mount command is empty or starts with "
                                      "'-', so it could be read as an option")
        return args + pairs


class Mounter(Protocol):
    def mount_fuse(self, spec: FuseMountSpec) -> None: ...

    def stop_fuse(self, spec: FuseMountSpec) -> None: ...

    def bind(self, source: str, target: str, read_only: bool) -> None: ...

    def unmount(self, path: str) -> None: ...

    def state(self, path: str) -> MountState: ...


def _tail(text: str, limit: int = 800) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class SystemMounter:
    """The real thing: ``hdfs-csi mount``, then mounts and unmounts by descriptor."""

    def __init__(self, mount_command: Sequence[str], timeout: float = 60.0,
                 kubelet_dirs: Sequence[str] = ("/var/lib/kubelet",)):
        self.mount_command = list(mount_command)
        self.timeout = timeout
        self.local = Anchor(tuple(kubelet_dirs))

    # -- FUSE -------------------------------------------------------------------------
    def mount_fuse(self, spec: FuseMountSpec) -> None:
        target = spec.target or spec.mountpoint
        cmd = self.mount_command + spec.command_args()
        log.info("starting FUSE mount of %s at %s%s", spec.source_uri, target,
                 " (read-only)" if spec.read_only else "")
        try:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=self.timeout, start_new_session=True, close_fds=True,
            )
        except FileNotFoundError as exc:
            raise MountFailed(f"cannot run the mount helper {self.mount_command[0]!r}: "
                              f"{exc}") from None
        except subprocess.TimeoutExpired:
            # The helper may still bring the daemon up later: make sure it does not.
            self.stop_fuse(spec)
            raise Unavailable(f"hdfs-csi mount did not report a live mount within "
                              f"{self.timeout:.0f} s (is HDFS reachable?)") from None
        if proc.returncode != 0:
            self.stop_fuse(spec)
            detail = _tail(proc.stderr or proc.stdout or "") or f"exit status {proc.returncode}"
            raise MountFailed(f"hdfs-csi mount of {spec.source_uri} failed: {detail}")
        if not mounts.wait_mounted(spec.mountpoint, timeout=5.0):
            self.stop_fuse(spec)
            raise MountFailed(f"hdfs-csi mount exited 0 but {spec.mountpoint} is not a live "
                              "FUSE mount")
        if spec.target is None:
            return
        try:
            fd = os.open(spec.mountpoint, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                self.local.attach(fd, spec.target, read_only=False)
            finally:
                os.close(fd)
            # The copy at the target keeps the filesystem (and its daemon) alive.
            umount2(spec.mountpoint, MNT_DETACH)
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop_fuse(spec)
            raise

    def stop_fuse(self, spec: FuseMountSpec) -> None:
        """Unmount and make sure the daemon behind ``spec`` is gone.

        A target that cannot be walked safely (a parent swapped for a symlink)
        is an error, and the daemon is left alone: killing it would break the
        volume where it really is mounted.
        """
        if spec.target is not None:
            try:
                self.local.unmount(spec.target)
            except MountFailed as exc:
                log.warning("%s", exc)
        with contextlib.suppress(OSError):
            mounts.unmount(spec.mountpoint)     # a private path: no one else can change it
        pid = _read_pid(spec.pid_file)
        if pid is not None and _is_our_daemon(pid, spec.mountpoint, spec.target):
            _terminate(pid)
        if spec.pid_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spec.pid_file)

    # -- bind mounts ------------------------------------------------------------------
    def bind(self, source: str, target: str, read_only: bool) -> None:
        self.local.bind(source, target, read_only)

    # -- common -------------------------------------------------------------------------
    def unmount(self, path: str) -> None:
        self.local.unmount(path)

    def state(self, path: str) -> MountState:
        return self.local.state(path)


def _read_pid(pid_file: str | None) -> int | None:
    if not pid_file:
        return None
    try:
        with open(pid_file, encoding="ascii") as fh:
            return int(fh.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


def _is_our_daemon(pid: int, *mountpoints: str | None) -> bool:
    """Guard against PID reuse: the process must be a mount helper for this path
    (the private mountpoint, or the kubelet path a daemon of an earlier release
    mounted at directly)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return any(m is not None and os.fsencode(m) in argv for m in mountpoints)


def _terminate(pid: int, timeout: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not os.path.exists(f"/proc/{pid}") or _is_zombie(pid):
                return
            time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True
