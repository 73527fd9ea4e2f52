"""The keeper of a mount: holds its ``/dev/fuse`` connection and keeps a serving
daemon (:mod:`fuse_mount.server`) on it, through crashes, kills and upgrades.

The kernel keeps a FUSE connection alive while any process holds its
descriptor (``../shared/docs/fuse-takeover.md``).  So the keeper, a small
process that never touches HDFS, opens ``/dev/fuse``, mounts it with
``mount(2)`` and never lets go; the daemon that does the work is its child,
on a copy of the descriptor.  When that child dies without the connection
having ended (SIGKILL, an OOM kill, a crash) the mount point never went away:
the keeper starts a successor on the same descriptor, which asks the kernel
to resend what the dead one had read and not answered.  A reader, in any
mount namespace, waits for the length of a restart instead of getting
``ENOTCONN``; bind mounts in running containers stay good.

Signals to the keeper (whose pid is the one in ``--pid-file``):

* SIGTERM, SIGINT, SIGHUP: unmount (lazily, as libfuse does) and stop;
* SIGUSR1: planned upgrade.  A successor is started and does its slow start-up
  while the old daemon still serves; then the old one finishes the requests in
  flight and exits, and the successor takes over.

When successors keep failing (HDFS unreachable for good, or a daemon that
dies again at once, e.g. on a request that kills it each time it is resent),
the keeper gives up after :data:`MAX_QUICK_DEATHS` daemons in a row that did
not start or served less than :data:`QUICK_DEATH` seconds, unmounts, and
exits; the node service then sees a dead mount and remounts it, as it does
for a mount without a keeper.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from fuse_mount import cgroups, mounts
from fuse_mount.options import MountOptions
from fuse_mount.runner import MountError, prepare_mountpoint, tune_kernel_readahead
from hdfs_client.uri import parse_hdfs_uri

log = logging.getLogger(__name__)

MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MNT_DETACH = 2
MAX_QUICK_DEATHS = 5
QUICK_DEATH = 0.5   # seconds of serving: a resent request that kills it dies sooner
START_TIMEOUT = 120.0
SERVER_MODULE = "fuse_mount.server"
EXIT_UNMOUNTED, EXIT_HANDED_OVER = 0, 3
#: made in the takeover directory before the keeper stops its daemon for good (SIGTERM
#: also starts a handover): what the daemon leaves to a successor it now cleans up
UNMOUNTING_FILE = "unmounting"

_libc = ctypes.CDLL(None, use_errno=True)


def sys_mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
                     data.encode())
    if rc != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount {target}: {os.strerror(code)}")


def sys_umount(target: str, flags: int = 0) -> int:
    rc = _libc.umount2(target.encode(), flags)
    return 0 if rc == 0 else ctypes.get_errno()


class Child:
    """One serving daemon and the socket the keeper talks to it over."""

    def __init__(self, proc: subprocess.Popen[bytes], control: socket.socket, takeover: bool):
        self.proc = proc
        self.control = control
        self.takeover = takeover
        self.started = time.monotonic()

    def wait_ready(self, timeout: float) -> str:
        """``READY``, or why not (the child's ``ERR`` message, or that it died)."""
        self.control.settimeout(timeout)
        buf = b""
        try:
            while b"\n" not in buf:
                chunk = self.control.recv(4096)
                if not chunk:
                    break
                buf += chunk
        except TimeoutError:
            return f"the mount daemon did not start within {timeout:.0f}s"
        line = buf.split(b"\n", 1)[0].decode("utf-8", "replace")
        if line == "READY":
            return line
        if line.startswith("ERR "):
            return line[4:]
        return "the mount daemon exited during start-up (see its log)"

    def go(self) -> None:
        self.control.sendall(b"GO\n")
        self.started = time.monotonic()

    def close(self) -> None:
        self.control.close()


class Keeper:
    def __init__(self, source: str, mountpoint: str, opts: MountOptions):
        self.source = source
        self.mountpoint = mountpoint
        self.opts = opts
        self.fd = -1
        self.dir = ""
        self.child: Child | None = None
        self._signals: list[int] = []
        self._quick_deaths = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._own_dir = opts.takeover_dir is None

    # -- processes -----------------------------------------------------------------------
    def _spawn(self, takeover: bool) -> Child:
        mine, theirs = socket.socketpair()
        # the daemon logs to the keeper's stderr (the log file); the pid file is the keeper's
        opts_args = dataclasses.replace(self.opts, pid_file=None, log_file=None).to_args()
        cmd = [sys.executable, "-m", SERVER_MODULE, self.source, self.mountpoint, *opts_args,
               "--fuse-fd", str(self.fd),
               "--control-fd", str(theirs.fileno()), "--keeper-pid", str(os.getpid())]
        if takeover:
            cmd.append("--takeover")
        proc = subprocess.Popen(cmd, pass_fds=(self.fd, theirs.fileno()),
                                stdin=subprocess.DEVNULL)
        theirs.close()
        with open(os.path.join(self.dir, "server.pid"), "w") as fh:
            fh.write(f"{proc.pid}\n")
        log.info("mount daemon %d started%s", proc.pid, " to take over" if takeover else "")
        return Child(proc, mine, takeover)

    def _start(self, takeover: bool) -> Child:
        child = self._spawn(takeover)
        why = child.wait_ready(START_TIMEOUT)
        if why != "READY":
            self._stop_child(child)
            raise MountError(why)
        return child

    def _stop_child(self, child: Child, sig: int = signal.SIGKILL) -> None:
        if child.proc.poll() is None:
            child.proc.send_signal(sig)
        try:
            child.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
        child.close()

    # -- the mount -----------------------------------------------------------------------
    def run(self, on_ready: Callable[[], None] | None) -> None:
        loc = parse_hdfs_uri(self.source)
        self.mountpoint = prepare_mountpoint(self.mountpoint)
        self.dir = self.opts.takeover_dir or _private_dir()
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        if self._own_dir:
            self.opts = dataclasses.replace(self.opts, takeover_dir=self.dir)
        if self.opts.cgroup:
            try:
                moved = cgroups.move(self.opts.cgroup)
            except OSError as exc:
                # The mount still works; it only shares the fate of whoever started it.
                log.warning("cannot move the keeper into cgroup %s (%s): this mount ends "
                            "with the container or session that started it",
                            self.opts.cgroup, exc.strerror or exc)
            else:
                log.info("keeper %d moved into cgroup /%s (%s)", os.getpid(), self.opts.cgroup,
                         ", ".join(moved))
        try:
            self.fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise MountError(f"cannot open /dev/fuse: {exc.strerror}") from None
        try:
            self._run(loc, on_ready)
        finally:
            os.close(self.fd)
            if self._own_dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, loc: object, on_ready: Callable[[], None] | None) -> None:
        self.child = self._start(takeover=False)
        flags = MS_NOSUID | MS_NODEV | (MS_RDONLY if self.opts.read_only else 0)
        allow_other = self.opts.allow_other if self.opts.allow_other is not None \
            else os.geteuid() == 0
        data = (f"fd={self.fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}"
                + (",allow_other" if allow_other else ""))
        log.info("mounting %s at %s (%s)", loc, self.mountpoint, self.opts.describe())
        try:
            sys_mount(str(loc).replace(",", "%2C"), self.mountpoint, "fuse.hdfs", flags, data)
        except OSError as exc:
            self._stop_child(self.child)
            raise MountError(f"FUSE mount of {self.mountpoint} failed: {exc.strerror}") from None
        self.child.go()
        if not mounts.wait_mounted(self.mountpoint, timeout=60):
            self._unmount()
            self._stop_child(self.child)
            raise MountError(f"{self.mountpoint} did not answer after mounting")
        tune_kernel_readahead(self.mountpoint, self.opts.kernel_read_ahead)
        log.info("%s is mounted (keeper %d, daemon %d)", self.mountpoint, os.getpid(),
                 self.child.proc.pid)
        if on_ready is not None:
            on_ready()
        self._supervise()

    def _supervise(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
                    signal.SIGCHLD):
            signal.signal(sig, self._note_signal)
        while True:
            assert self.child is not None
            while self._signals:
                sig = self._signals.pop(0)
                if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    log.info("signal %d: unmounting %s", sig, self.mountpoint)
                    self._unmount()
                    with open(os.path.join(self.dir, UNMOUNTING_FILE), "w"):
                        pass
                    self._stop_child(self.child, signal.SIGTERM)
                    return
                if sig == signal.SIGUSR1:
                    self._hand_over()
            code = self.child.proc.poll()
            if code is not None:
                if code == EXIT_UNMOUNTED and not mounts.is_mounted(self.mountpoint):
                    log.info("%s unmounted", self.mountpoint)
                    self.child.close()
                    return
                if not self._replace(code):
                    return
                continue
            select.select([self._wake_r], [], [], 1.0)
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass

    def _note_signal(self, sig: int, _frame: object) -> None:
        if sig != signal.SIGCHLD:
            self._signals.append(sig)
        os.write(self._wake_w, b"s")

    def _replace(self, code: int) -> bool:
        """The daemon exited while the mount is still there: start a successor."""
        assert self.child is not None
        dead = self.child
        dead.close()
        how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
        now = time.monotonic()
        self._quick_deaths = self._quick_deaths + 1 if now - dead.started < QUICK_DEATH else 0
        if self._quick_deaths >= MAX_QUICK_DEATHS:
            log.error("mount daemon %d %s; %d daemons in a row died within %.1fs: giving up, "
                      "unmounting %s", dead.proc.pid, how, MAX_QUICK_DEATHS, QUICK_DEATH,
                      self.mountpoint)
            self._unmount()
            return False
        log.warning("mount daemon %d %s; the FUSE connection is held: starting a successor",
                    dead.proc.pid, how)
        try:
            self.child = self._start(takeover=True)
        except MountError as exc:
            log.error("successor failed to start: %s", exc)
            time.sleep(min(5.0, 0.5 * self._quick_deaths))
            self.child = _Exited(dead.proc)
            return True
        self.child.go()
        log.info("mount daemon %d took over %s after %.2fs", self.child.proc.pid,
                 self.mountpoint, time.monotonic() - now)
        return True

    def _hand_over(self) -> None:
        """Planned upgrade: start the successor while the old daemon still serves."""
        assert self.child is not None
        old = self.child
        t0 = time.monotonic()
        try:
            new = self._start(takeover=True)
        except MountError as exc:
            log.error("upgrade: the new daemon failed to start (%s); the old one serves on",
                      exc)
            return
        t1 = time.monotonic()
        old.proc.send_signal(signal.SIGTERM)   # finish what is in flight, then exit
        try:
            code = old.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            old.proc.kill()
            code = old.proc.wait()
        old.close()
        new.go()
        self.child = new
        log.info("upgrade: daemon %d handed %s over to %d (exit %d); pause %.3fs after a "
                 "%.2fs start", old.proc.pid, self.mountpoint, new.proc.pid, code,
                 time.monotonic() - t1, t1 - t0)

    def _unmount(self) -> None:
        code = sys_umount(self.mountpoint, MNT_DETACH)
        if code not in (0, 22):   # EINVAL: no longer mounted
            log.warning("unmounting %s: %s", self.mountpoint, os.strerror(code))


class _Exited:
    """Stands for a daemon that could not be replaced yet: the next round retries."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        self.proc = proc
        self.started = time.monotonic()

    def close(self) -> None:
        pass


_RUN_BASE = "/run/hdfs-csi/takeover"


def _private_dir() -> str:
    base = _RUN_BASE if os.geteuid() == 0 else tempfile.gettempdir()
    os.makedirs(base, mode=0o700, exist_ok=True)
    return tempfile.mkdtemp(prefix="mount-", dir=base)


def keep_mount(source: str, mountpoint: str, opts: MountOptions, *,
               on_ready: Callable[[], None] | None = None) -> None:
    """Mount and keep the mount served until it is unmounted (blocks)."""
    Keeper(source, mountpoint, opts).run(on_ready)
