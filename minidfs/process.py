"""Run minidfs as a child process, with a small control channel on its stdin.

Why a subprocess: FUSE, CSI and benchmark tests measure or exercise code
whose performance would otherwise share one GIL with the server.  The child
is ``python -m minidfs --control-stdin ...``; it prints
``minidfs ready: hdfs://HOST:PORT ...`` once it accepts connections, and
answers one line (``ok ...`` / ``error: ...``) to each control command, e.g.
``stop_datanode 0`` or ``packet_latency 0.002`` (see ``minidfs.cli``).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from typing import Any

from hdfs_csi_common.units import format_size

_READY = re.compile(r"minidfs ready: (hdfs://(\S+?):(\d+))")


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment minus Hadoop config pointers: a stray core-site.xml could switch
    hdfs-native to Kerberos and make tests depend on the host."""
    env = dict(os.environ if env is None else env)
    for key in ("HADOOP_CONF_DIR", "HADOOP_HOME"):
        env.pop(key, None)
    return env


class MiniDFSProcess:
    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *, port: int = 0,
                 datanodes: int = 1, block_size: int | str | None = None,
                 replication: int | None = None, host: str = "127.0.0.1",
                 extra_args: Sequence[str] = (), log_file: str | None = None,
                 startup_timeout: float = 60.0, env: dict[str, str] | None = None,
                 **options: Any):
        self._own_dir = data_dir is None
        self.data_dir = str(data_dir) if data_dir is not None else \
            tempfile.mkdtemp(prefix="minidfs-proc-")
        self.host = host
        self.port = port
        self.datanodes = datanodes
        self.block_size = block_size
        self.replication = replication
        self.extra_args = list(extra_args)
        self.log_file = log_file
        self.startup_timeout = startup_timeout
        self.env = env
        self.options = options  # e.g. rpc_latency="5ms" -> --rpc-latency 5ms
        self.proc: subprocess.Popen[str] | None = None
        self.uri = ""
        self.ready_line = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._cmd_lock = threading.Lock()

    def command_line(self) -> list[str]:
        cmd = [sys.executable, "-m", "minidfs", "--data-dir", self.data_dir,
               "--host", self.host, "--port", str(self.port),
               "--datanodes", str(self.datanodes), "--control-stdin"]
        if self.block_size is not None:
            cmd += ["--block-size", str(self.block_size)]
        if self.replication is not None:
            cmd += ["--replication", str(self.replication)]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                cmd.append(flag)
            elif value not in (None, False):
                cmd += [flag, str(value)]
        return cmd + self.extra_args

    def start(self) -> MiniDFSProcess:
        stderr: Any = subprocess.DEVNULL
        os.makedirs(self.data_dir, exist_ok=True)
        if self.log_file:
            os.makedirs(os.path.dirname(os.path.abspath(self.log_file)), exist_ok=True)
            stderr = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            self.command_line(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            text=True, bufsize=1, env=clean_env(self.env), start_new_session=True,
        )
        if stderr is not subprocess.DEVNULL:
            stderr.close()
        threading.Thread(target=self._pump, daemon=True, name="minidfs-proc-stdout").start()
        try:
            while True:
                line = self._lines.get(timeout=self.startup_timeout)
                if line is None:
                    raise RuntimeError(f"minidfs exited with {self.proc.wait()} before it was "
                                       f"ready (see {self.log_file or 'its stderr'})")
                m = _READY.search(line)
                if m:
                    self.ready_line = line
                    self.uri = m.group(1)
                    self.port = int(m.group(3))
                    return self
        except queue.Empty:
            self.kill()
            raise RuntimeError(f"minidfs did not become ready in {self.startup_timeout}s") \
                from None

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self, *words: object, timeout: float = 30.0) -> str:
        """Send one control command (e.g. ``command("stop_datanode", 0)``); return its reply."""
        if not self.running():
            raise RuntimeError("minidfs process is not running")
        assert self.proc is not None and self.proc.stdin is not None
        with self._cmd_lock:
            self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
            self.proc.stdin.flush()
            while True:
                line = self._lines.get(timeout=timeout)
                if line is None:
                    raise RuntimeError("minidfs exited while handling a command")
                if line.startswith(("ok", "error")):
                    break
        if line.startswith("error"):
            raise RuntimeError(f"minidfs {' '.join(map(str, words))}: {line}")
        return line

    # convenience wrappers mirroring MiniDFS / Faults
    def stop_datanode(self, index: int) -> None:
        self.command("stop_datanode", index)

    def start_datanode(self, index: int) -> None:
        self.command("start_datanode", index)

    def set_fault(self, name: str, value: float | None) -> None:
        """``rpc_latency``/``packet_latency`` in seconds, ``stream_bandwidth`` in bytes/s."""
        if name == "stream_bandwidth" and value:
            value = format_size(value).replace(" ", "").replace("iB", "")
        self.command(name, value if value is not None else 0)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait (a clean shutdown: checkpoint written, exit code 0)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self._close_pipes()
        if self._own_dir:
            import shutil

            shutil.rmtree(self.data_dir, ignore_errors=True)
        return rc

    def kill(self) -> None:
        """SIGKILL: simulate a crash (the data directory is kept)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.proc is not None:
            for pipe in (self.proc.stdin, self.proc.stdout):
                try:
                    if pipe is not None:
                        pipe.close()
                except OSError:
                    pass

    def restart(self) -> MiniDFSProcess:
        """Stop (cleanly if still running) and start again on the same directory and port."""
        own, self._own_dir = self._own_dir, False
        try:
            self.stop()
        finally:
            self._own_dir = own
        self._lines = queue.Queue()
        return self.start()

    def __enter__(self) -> MiniDFSProcess:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
