"""The few mount operations the node service needs, behind a small interface.

* :meth:`Mounter.mount_fuse` starts one FUSE filesystem for a staged volume by
  running the ``hdfs-csi mount`` command, which daemonizes (double fork +
  setsid) and returns only once the mount answers.  The daemon is therefore
  never a child of the gRPC process, and a restart of the node service
  leaves every mount serving.
* :meth:`Mounter.bind` exposes the staged mount at a pod's target path, read-
  only by a ``remount,bind,ro`` when asked (a bind mount ignores ``ro`` on the
  first call).
* :meth:`Mounter.unmount` and :meth:`Mounter.state` use the shared
  :mod:`fuse_mount.mounts` helpers so "is it mounted, is it alive" has one
  answer across the project.

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

from csi_driver.errors import MountFailed, Unavailable
from fuse_mount import mounts
from fuse_mount.mounts import MountState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FuseMountSpec:
    source_uri: str                 #: hdfs://authority/path
    mountpoint: str
    read_only: bool
    option_args: tuple[str, ...] = ()     #: --cache-size ... (from MountOptions)
    identity_args: tuple[str, ...] = field(default=(), repr=False)
    cache_dir: str | None = None
    pid_file: str | None = None
    log_file: str | None = None

    def command_args(self) -> list[str]:
        args = [self.source_uri, self.mountpoint]
        if self.read_only:
            args.append("--read-only")
        if self.cache_dir:
            args += ["--cache-dir", self.cache_dir]
        args += list(self.option_args)
        args += list(self.identity_args)
        if self.pid_file:
            args += ["--pid-file", self.pid_file]
        if self.log_file:
            args += ["--log-file", self.log_file]
        return args


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
    """The real thing: ``hdfs-csi mount``, ``mount --bind``, ``fusermount3``/``umount``."""

    def __init__(self, mount_command: Sequence[str], timeout: float = 60.0):
        self.mount_command = list(mount_command)
        self.timeout = timeout

    # -- FUSE -------------------------------------------------------------------------
    def mount_fuse(self, spec: FuseMountSpec) -> None:
        cmd = self.mount_command + spec.command_args()
        log.info("starting FUSE mount of %s at %s%s", spec.source_uri, spec.mountpoint,
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

    def stop_fuse(self, spec: FuseMountSpec) -> None:
        """Unmount and make sure the daemon behind ``spec`` is gone."""
        with contextlib.suppress(OSError):
            mounts.unmount(spec.mountpoint)
        pid = _read_pid(spec.pid_file)
        if pid is not None and _is_our_daemon(pid, spec.mountpoint):
            _terminate(pid)
        if spec.pid_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spec.pid_file)

    # -- bind mounts ------------------------------------------------------------------
    def bind(self, source: str, target: str, read_only: bool) -> None:
        _run(["mount", "--bind", source, target], f"bind-mount {source} at {target}")
        if read_only:
            try:
                _run(["mount", "-o", "remount,bind,ro", target], f"make {target} read-only")
            except MountFailed:
                with contextlib.suppress(OSError):
                    mounts.unmount(target)
                raise

    # -- common -------------------------------------------------------------------------
    def unmount(self, path: str) -> None:
        try:
            mounts.unmount(path)
        except OSError as exc:
            raise MountFailed(f"cannot unmount {path}: {exc.strerror or exc}") from None

    def state(self, path: str) -> MountState:
        try:
            return mounts.mount_state(path)
        except OSError as exc:
            # Mounted but stat fails with something other than the "dead" errnos:
            # report it as dead so callers try to recover rather than crash.
            log.warning("stat of mount %s failed: %s", path, exc)
            return MountState.DEAD


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30)
    if proc.returncode != 0:
        raise MountFailed(f"cannot {what}: {_tail(proc.stderr) or proc.returncode}")


def _read_pid(pid_file: str | None) -> int | None:
    if not pid_file:
        return None
    try:
        with open(pid_file, encoding="ascii") as fh:
            return int(fh.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


def _is_our_daemon(pid: int, mountpoint: str) -> bool:
    """Guard against PID reuse: the process must be a mount helper for this path."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return os.fsencode(mountpoint) in argv


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
