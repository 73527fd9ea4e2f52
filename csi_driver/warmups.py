"""Background warm-ups of staged volumes (the ``warmup`` volume attribute).

Once a volume with a disk cache is staged, the node service starts
``hdfs-csi warmup`` on the staged mount for the paths the attribute names,
bounded by the volume's ``cacheSize``, as a detached process: NodeStageVolume
returns at once (kubelet's timeout is never at stake), the first epoch of the
job finds what has been read so far in the cache, and a restart of the node
service leaves the warm-up running.  Its progress lines go to
``<state-dir>/mounts/<key>.warmup.log``; the mount's own metrics
(``hdfs_fuse_cache_bytes``) show the cache filling.

Unstaging stops a warm-up that is still running (its process group is sent
SIGTERM, then SIGKILL) before the mount goes.  The pid file is only trusted
if ``/proc/<pid>/cmdline`` is still our warm-up of that staging path: a pid
recycled by another process is never signalled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

WARMUP_COMMAND: tuple[str, ...] = (sys.executable, "-m", "hdfs_csi", "warmup")


class Warmups:
    def __init__(self, directory: str, command: Sequence[str] = WARMUP_COMMAND):
        self.directory = directory
        self.command = list(command)

    def _files(self, key: str) -> tuple[str, str]:
        base = os.path.join(self.directory, f"{key}.warmup")
        return base + ".pid", base + ".log"

    def command_for(self, root: str, patterns: Sequence[str], max_bytes: int | None) -> list[str]:
        cmd = self.command + ["--threads", "8"]
        if max_bytes:
            cmd += ["--max-bytes", str(max_bytes)]
        # "--" ends the options: no pattern can be read as one (they are checked too)
        return cmd + ["--"] + [os.path.normpath(os.path.join(root, p)) for p in patterns]

    def start(self, key: str, root: str, patterns: Sequence[str], max_bytes: int | None) -> int:
        """Start warming ``patterns`` (relative to the mount at ``root``); returns the pid."""
        pid_file, log_file = self._files(key)
        os.makedirs(self.directory, exist_ok=True)
        cmd = self.command_for(root, patterns, max_bytes)
        with open(log_file, "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    close_fds=True)
        with open(pid_file, "w", encoding="ascii") as fh:
            fh.write(f"{proc.pid}\n")
        # reap it when it ends (no zombie per warm-up); a restarted node service is not
        # its parent any more, and init reaps it then
        threading.Thread(target=proc.wait, name=f"warmup-reaper-{key[:12]}",
                         daemon=True).start()
        log.info("warming %d path(s) of %s into its disk cache (pid %d, log %s)",
                 len(patterns), root, proc.pid, log_file)
        return proc.pid

    def running(self, key: str, root: str) -> int | None:
        """The pid of this volume's warm-up if it is still running, else None."""
        pid_file, _ = self._files(key)
        try:
            with open(pid_file, encoding="ascii") as fh:
                pid = int(fh.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, ValueError):
            return None
        if state == b"Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)   # our own child, finished: reap it
            return None
        ours = b"warmup" in argv and any(a.startswith(os.fsencode(root)) for a in argv)
        return pid if ours else None

    def stop(self, key: str, root: str, timeout: float = 5.0) -> None:
        """Stop the volume's warm-up if it runs; forget its files either way."""
        pid = self.running(key, root)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.running(key, root) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.running(key, root) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            log.info("stopped the warm-up of %s (pid %d)", root, pid)
        for path in self._files(key):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
