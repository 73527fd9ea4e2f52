"""HadoopCluster: Apache Hadoop's own HDFS (MiniDFSCluster) in a child JVM.

The same shape as :class:`minidfs.MiniDFS` (start, ``uri``, stop/start a
DataNode, stop), plus what only the real thing has: HA with failover,
erasure-coding policies, and arbitrary Hadoop configuration (``conf``),
which is how a secure-mode test switches on Kerberos.

The JVM runs ``java/HdfsCsiMiniCluster.java`` (see its header for the
protocol): it prints one JSON line when it accepts clients and answers one
JSON line per command on its stdin.  Its stdin is a pipe from this process,
so when this process dies, however it dies, the JVM reads EOF and shuts
down: a crashed test leaves no cluster behind.  :meth:`HadoopCluster.stop`
asks politely, then kills.

Layout of ``data_dir``: ``dfs/`` (MiniDFSCluster's name and data dirs),
``conf/`` (core-site.xml and hdfs-site.xml for clients: point
``HADOOP_CONF_DIR`` at it), ``hadoop.log`` (the JVM's log, WARN and up).
"""

from __future__ import annotations

import getpass
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from hadoop_cluster import siteconf, toolchain

#: Hadoop config pointers we keep away from the JVM: a stray site file (or
#: Kerberos switched on in it) would make the test cluster depend on the host.
_HOST_VARS = ("HADOOP_CONF_DIR", "HADOOP_HOME", "HADOOP_USER_NAME", "HADOOP_OPTS",
              "HADOOP_CLIENT_OPTS", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS")


class HadoopClusterError(RuntimeError):
    """The cluster failed to start or refused a command (the message says why)."""


class HadoopCluster:
    """A real HDFS for tests, benchmarks and the demo.

    >>> with HadoopCluster(datanodes=3, block_size=1 << 20) as hdfs:
    ...     client = hdfs_client.connect(hdfs.uri, config=hdfs.client_config)

    ``data_dir=None`` uses a temporary directory removed on stop.  ``ha=True``
    starts two NameNodes behind the nameservice ``nameservice`` (the first one
    active), and :attr:`uri` is then ``hdfs://<nameservice>``: clients need
    :attr:`client_config` (or :attr:`hadoop_conf_dir`) to resolve it.
    ``superuser`` is the user the JVM runs as (``HADOOP_USER_NAME``), which
    makes it the HDFS superuser; by default the OS user.  ``conf`` is applied
    last, over the launcher's own settings.  ``keep_data=True`` starts on the
    namespace and blocks a previous run left in ``data_dir`` (if any) instead
    of formatting: benchmarks reuse an uploaded dataset that way.
    """

    backend = "hadoop"  #: the name :mod:`hdfs_backends` knows it by

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *, datanodes: int = 1,
                 block_size: int = 1 << 20, replication: int | None = None, ha: bool = False,
                 nameservice: str = "hdfs-csi", conf: Mapping[str, str] | None = None,
                 ec_policies: Iterable[str] = (), superuser: str | None = None,
                 keep_data: bool = False,
                 startup_timeout: float = 240.0, heap: str = "768m", log_level: str = "WARN",
                 jvm_options: Iterable[str] = (), env: Mapping[str, str] | None = None):
        if datanodes < 0:
            raise ValueError("datanodes must be >= 0")
        if block_size <= 0 or block_size % 512:
            raise ValueError("block_size must be a positive multiple of 512")
        self._own_dir = data_dir is None
        self.data_dir = str(data_dir) if data_dir is not None else \
            tempfile.mkdtemp(prefix="hadoop-cluster-")
        self.num_datanodes = datanodes
        self.block_size = block_size
        self.replication = replication
        self.ha = ha
        self.nameservice = nameservice
        self.conf = dict(conf or {})
        self.ec_policies = tuple(ec_policies)
        self.superuser = superuser or getpass.getuser()
        self.keep_data = keep_data
        self.startup_timeout = startup_timeout
        self.heap = heap
        self.log_level = log_level
        self.jvm_options = tuple(jvm_options)
        self.env = dict(env) if env is not None else None
        self.log_file = os.path.join(self.data_dir, "hadoop.log")
        self.hadoop_conf_dir = os.path.join(self.data_dir, "conf")
        self.state: dict[str, Any] = {}
        self.startup_seconds = 0.0
        self.proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._cmd_lock = threading.Lock()

    # -- what clients need ----------------------------------------------------------
    @property
    def uri(self) -> str:
        """``hdfs://127.0.0.1:PORT``, or ``hdfs://<nameservice>`` under HA."""
        return str(self._need("uri"))

    host = "127.0.0.1"  #: everything binds to loopback

    @property
    def port(self) -> int:
        """RPC port of the first NameNode (the only one without HA)."""
        return int(self._need("namenodes")[0]["rpc"].rsplit(":", 1)[1])

    @property
    def namenode_uris(self) -> list[str]:
        return [f"hdfs://{nn['rpc']}" for nn in self._need("namenodes")]

    @property
    def datanode_addresses(self) -> list[str]:
        """Transfer addresses (``127.0.0.1:PORT``) by our stable index, stopped ones included."""
        return [dn["xfer"] for dn in self._need("datanodes")]

    @property
    def client_config(self) -> dict[str, str]:
        """Hadoop keys for ``hdfs_client.connect(uri, config=...)`` (the HA nameservice)."""
        return dict(self._need("client_conf"))

    @property
    def active_namenode(self) -> int:
        """Index of the active NameNode (-1 while none is)."""
        return int(self._need("active"))

    @property
    def pid(self) -> int:
        assert self.proc is not None, "HadoopCluster is not started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _need(self, key: str) -> Any:
        if not self.state:
            raise HadoopClusterError("HadoopCluster is not started")
        return self.state[key]

    # -- lifecycle --------------------------------------------------------------------
    def command_line(self) -> list[str]:
        args = ["--base-dir", os.path.join(self.data_dir, "dfs"),
                "--datanodes", str(self.num_datanodes), "--block-size", str(self.block_size),
                "--nameservice", self.nameservice]
        if self.replication is not None:
            args += ["--replication", str(self.replication)]
        if self.ha:
            args.append("--ha")
        if self.keep_data and self._formatted_before():
            args.append("--no-format")
        for policy in self.ec_policies:
            args += ["--ec-policy", policy]
        if self.conf:
            # A file, not --conf arguments: values may be secret-adjacent (keystore
            # passwords in secure mode) and must stay off process command lines.
            path = os.path.join(self.data_dir, "launcher-conf.xml")
            fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(siteconf.render(self.conf))
            os.replace(path + ".tmp", path)
            args += ["--conf-file", path]
        return toolchain.launcher_command(args, heap=self.heap, log_level=self.log_level,
                                          jvm_options=self.jvm_options)

    def _formatted_before(self) -> bool:
        """A previous run left a formatted NameNode directory (MiniDFSCluster's layout)."""
        import glob

        pattern = os.path.join(self.data_dir, "dfs", "name-*", "current", "VERSION")
        return bool(glob.glob(pattern))

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in (self.env if self.env is not None else os.environ).items()
               if k not in _HOST_VARS}
        env["HADOOP_USER_NAME"] = self.superuser
        return env

    def start(self) -> HadoopCluster:
        if self.running():
            return self
        os.makedirs(self.data_dir, exist_ok=True)
        try:
            cmd = self.command_line()
        except toolchain.ToolchainError as exc:
            raise HadoopClusterError(str(exc)) from exc
        t0 = time.monotonic()
        with open(self.log_file, "ab") as log:
            args = cmd[cmd.index(toolchain.LAUNCHER_CLASS):]
            log.write(f"--- hdfs-csi: starting {' '.join(args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                bufsize=1, env=self._child_env(), cwd=self.data_dir, start_new_session=True)
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc, self._lines), daemon=True,
                         name="hadoop-cluster-stdout").start()
        deadline = t0 + self.startup_timeout
        try:
            while True:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
                if line is None:
                    raise HadoopClusterError(
                        f"Hadoop cluster JVM exited with {self.proc.wait()} before it was ready"
                        f"{self._log_tail()}")
                msg = self._parse(line)
                if msg is None:
                    continue
                if msg.get("event") == "failed":
                    raise HadoopClusterError(f"Hadoop cluster failed to start: {msg.get('error')}"
                                             f"{self._log_tail()}")
                if msg.get("event") == "ready":
                    self.state = msg
                    break
        except queue.Empty:
            self._kill()
            raise HadoopClusterError(f"Hadoop cluster not ready in {self.startup_timeout:.0f}s"
                                     f"{self._log_tail()}") from None
        except BaseException:
            self._kill()
            raise
        self.startup_seconds = time.monotonic() - t0
        siteconf.write_conf_dir(self.hadoop_conf_dir, self.client_config)
        return self

    @staticmethod
    def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    @staticmethod
    def _parse(line: str) -> dict[str, Any] | None:
        if not line.startswith("{"):
            return None  # not ours (the launcher keeps stdout clean; be lenient anyway)
        try:
            msg = json.loads(line)
        except ValueError:
            return None
        return msg if isinstance(msg, dict) else None

    def _log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return f"\n--- tail of {self.log_file}:\n{text}"

    def stop(self, timeout: float = 60.0) -> None:
        """Shut the cluster down (``shutdown`` command, then EOF, then SIGKILL); idempotent."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                with self._cmd_lock:
                    assert proc.stdin is not None
                    proc.stdin.write("shutdown\n")
                    proc.stdin.flush()
                    proc.stdin.close()
            except (OSError, ValueError):
                pass  # already gone or closed: waiting decides
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self._close_pipes()
        self.state = {}
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the JVM leads its own session
            except OSError:
                proc.kill()
            proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.proc is None:
            return
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> HadoopCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control ----------------------------------------------------------------------
    def command(self, *words: object, timeout: float = 180.0) -> dict[str, Any]:
        """Send one control command; return its JSON answer (raise if it failed)."""
        if not self.running():
            raise HadoopClusterError("Hadoop cluster JVM is not running")
        assert self.proc is not None and self.proc.stdin is not None
        text = " ".join(str(w) for w in words)
        if "\n" in text:
            raise ValueError("a command is one line")
        deadline = time.monotonic() + timeout
        with self._cmd_lock:
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
            while True:
                try:
                    line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    raise HadoopClusterError(f"no answer to {text!r} in {timeout:.0f}s") from None
                if line is None:
                    raise HadoopClusterError(f"Hadoop cluster JVM exited during {text!r}"
                                             f"{self._log_tail()}")
                msg = self._parse(line)
                if msg is not None and "ok" in msg:
                    break
        if not msg["ok"]:
            raise HadoopClusterError(f"{text}: {msg.get('error')}")
        if "uri" in msg:  # commands that answer with the whole state
            self.state = {**msg, "event": "ready"}
        return msg

    def status(self) -> dict[str, Any]:
        return self.command("status")

    def stop_datanode(self, index: int, *, dead: bool = False) -> None:
        """Stop DataNode ``index`` (its storage and port are kept for :meth:`start_datanode`).

        Like a crashed DataNode, the NameNode only notices after its heartbeat
        expiry (10.5 minutes by default) unless ``dead=True`` tells it at once.
        """
        self.command("stop-datanode", int(index), *(["dead"] if dead else []))

    def start_datanode(self, index: int) -> None:
        """Restart a stopped DataNode on the same port with the same storage."""
        self.command("start-datanode", int(index))

    def failover(self) -> int:
        """Make the standby NameNode active (the active becomes standby); return its index."""
        return int(self.command("failover")["to"])

    def stop_namenode(self, index: int) -> None:
        self.command("stop-namenode", int(index))

    def start_namenode(self, index: int) -> None:
        """Restart a stopped NameNode on its old ports (it comes back as standby under HA)."""
        self.command("start-namenode", int(index))

    def restart(self) -> HadoopCluster:
        """Restart every NameNode and DataNode in place (same ports, same storage)."""
        self.command("restart", timeout=max(180.0, self.startup_timeout))
        return self

    def set_ec_policy(self, path: str, policy: str) -> None:
        """Enable ``policy`` (e.g. ``RS-3-2-1024k``), create ``path`` and set the policy on it."""
        if any(ch.isspace() for ch in path + policy):
            raise ValueError("path and policy must not contain whitespace")
        self.command("set-ec", path, policy)
