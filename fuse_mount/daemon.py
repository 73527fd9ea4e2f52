"""Run a mount in the background, detached from the caller, and say when it is ready.

The CSI node service (and any shell) runs ``hdfs-csi mount ...`` and must
learn one thing: is the filesystem there now, or what went wrong.  So:

* double ``fork`` + ``setsid``: the mount process is not a child of the
  caller, has no controlling terminal, and survives the caller's exit or
  restart (a node-plugin restart must not kill the mounts it made);
* a pipe from the daemon to the waiting parent carries ``OK`` once the mount
  answers ``stat`` (``on_ready``) or ``ERR <message>`` if set-up failed; EOF
  without either means the daemon died, and the parent points at the log;
* the parent exits 0 only after ``OK``; otherwise non-zero with the message on
  stderr, after killing a daemon that did not get ready in time.

Nothing HDFS- or FUSE-related is imported before the fork: the hdfs-native
runtime starts threads, and threads do not survive ``fork``.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from collections.abc import Callable

ReadyFn = Callable[[], None]


def daemonize(body: Callable[[ReadyFn], None], *, pid_file: str | None, log_file: str | None,
              startup_timeout: float, setup_logging: Callable[[], None]) -> int:
    """Fork a daemon running ``body(ready)``; in the caller return the exit code."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        os.waitpid(pid, 0)  # the intermediate child exits right after the second fork
        return _parent(r, startup_timeout, log_file)
    # -- intermediate child ------------------------------------------------------------
    os.close(r)
    os.setsid()
    if os.fork():
        os._exit(0)
    # -- daemon --------------------------------------------------------------------------
    code = 1
    try:
        os.chdir("/")
        _redirect_stdio(log_file)
        setup_logging()
        _send(w, f"PID {os.getpid()}\n")
        if pid_file:
            _write_pid(pid_file)

        def ready() -> None:
            _send(w, "OK\n")

        try:
            body(ready)
            code = 0
        except BaseException as exc:  # noqa: BLE001 - report every failure to the parent
            import logging

            logging.getLogger("fuse_mount.daemon").error("mount failed: %s", exc)
            _send(w, f"ERR {exc}\n")
    finally:
        try:
            os.close(w)
        except OSError:
            pass
        if pid_file:
            try:
                with open(pid_file) as fh:
                    if fh.read().strip() == str(os.getpid()):
                        os.unlink(pid_file)
            except OSError:
                pass
        os._exit(code)


def _parent(r: int, timeout: float, log_file: str | None) -> int:
    deadline = time.monotonic() + timeout
    buf = b""
    daemon_pid: int | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if daemon_pid:
                try:
                    os.kill(daemon_pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            print(f"hdfs-csi mount: not ready after {timeout:.0f}s; gave up"
                  + (f" (log: {log_file})" if log_file else ""), file=sys.stderr)
            return 1
        ready, _, _ = select.select([r], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(r, 65536)
        if not chunk:
            os.close(r)
            print("hdfs-csi mount: the mount process exited before the mount was ready"
                  + (f"; see {log_file}" if log_file else " (use --log-file or --foreground "
                     "to see why)"), file=sys.stderr)
            return 1
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode("utf-8", "replace")
            if text.startswith("PID "):
                daemon_pid = int(text[4:])
            elif text == "OK":
                os.close(r)
                return 0
            elif text.startswith("ERR "):
                os.close(r)
                print(f"hdfs-csi mount: {text[4:]}", file=sys.stderr)
                return 1


def _send(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode("utf-8", "replace"))
    except OSError:
        pass  # the parent gave up waiting; nothing left to tell


def _redirect_stdio(log_file: str | None) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        out = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    else:
        out = devnull
    os.dup2(out, 1)
    os.dup2(out, 2)
    if out != devnull:
        os.close(out)
    os.close(devnull)


def _write_pid(pid_file: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(pid_file)), exist_ok=True)
    tmp = f"{pid_file}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    os.replace(tmp, pid_file)
