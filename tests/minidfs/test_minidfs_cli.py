"""``hdfs-csi minidfs`` in the foreground, and MiniDFSProcess with its control channel."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from minidfs_kit import native_as

from hdfs_client import connect, errors
from minidfs.process import clean_env

pytestmark = pytest.mark.timeout(120)

READY = re.compile(r"^minidfs ready: hdfs://127\.0\.0\.1:(\d+) \(datanodes: "
                   r"127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+\)$")


def _start(args, data_dir):
    proc = subprocess.Popen([sys.executable, "-m", "hdfs_csi", "minidfs", "--port", "0",
                             "--data-dir", str(data_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env())
    line = proc.stdout.readline().strip()
    return proc, line


def test_cli_foreground_ready_line_and_sigterm(tmp_path) -> None:
    proc, line = _start(["--datanodes", "2", "--block-size", "1M", "--rpc-latency", "100ms"],
                        tmp_path)
    try:
        m = READY.match(line)
        assert m, line
        uri = f"hdfs://127.0.0.1:{m.group(1)}"
        c = native_as(uri)
        with c.create("/cli-file") as w:
            w.write(b"z" * 3_000_000)
        t0 = time.perf_counter()
        st = c.get_file_info("/cli-file")
        assert time.perf_counter() - t0 >= 0.1  # --rpc-latency applies
        assert st.blocksize == 1 << 20 and st.replication == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
    assert rc == 0
    # restart on the same data directory: the file is still there
    proc, line = _start(["--datanodes", "2"], tmp_path)
    try:
        uri = f"hdfs://127.0.0.1:{READY.match(line).group(1)}"
        with native_as(uri).read("/cli-file") as r:
            assert r.read() == b"z" * 3_000_000
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0


def test_cli_rejects_bad_arguments(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "minidfs", "--port", "0", "--block-size",
                           "1000", "--data-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, env=clean_env(), check=False)
    assert proc.returncode != 0 and "block_size" in proc.stderr


def test_process_helper_control_channel(minidfs_process_factory) -> None:
    proc = minidfs_process_factory(datanodes=1, block_size=64 * 1024)
    assert proc.running() and proc.uri.startswith("hdfs://127.0.0.1:")
    with connect(proc.uri) as c:
        c.write_file("/p/f", os.urandom(200_000))
        proc.stop_datanode(0)
        with pytest.raises(errors.HdfsIOError):
            c.read_file("/p/f")
        proc.start_datanode(0)
        assert len(c.read_file("/p/f")) == 200_000
        proc.command("fail_next", "getFileInfo", 1)
        with pytest.raises(errors.HdfsIOError):
            c.get_status("/p/f")
        assert c.get_status("/p/f").length == 200_000
        proc.set_fault("packet_latency", 0.05)
        t0 = time.perf_counter()
        c.read_file("/p/f")  # 4 packets
        assert time.perf_counter() - t0 >= 0.15
        proc.command("clear_faults")
        with pytest.raises(RuntimeError):
            proc.command("no_such_command")
        assert "datanodes=" in proc.command("status")
    assert proc.stop() == 0


def test_cli_fault_flags(tmp_path) -> None:
    proc, line = _start(["--datanodes", "2", "--fail-next", "mkdirs:2",
                         "--fail-next", "getFileInfo:1:java.io.FileNotFoundException",
                         "--stall-reads", "0:200ms", "--packet-latency", "0", "--stream-bandwidth",
                         "100M"], tmp_path)
    try:
        uri = f"hdfs://127.0.0.1:{READY.match(line).group(1)}"
        with connect(uri) as c:
            for _ in range(2):
                with pytest.raises(errors.HdfsIOError):
                    c.mkdirs("/x")
            c.mkdirs("/x")
            with pytest.raises(errors.NotFound):
                c.get_status("/x")
            assert c.get_status("/x").is_dir
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
