"""Fault injection: latency, bandwidth caps, failing calls, stalled reads.

Timing assertions are lower bounds only (an injected delay can make things
slower, never faster), so they hold on a loaded machine.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from hdfs_client import connect, errors

pytestmark = pytest.mark.timeout(120)

BS = 64 * 1024


@pytest.fixture(scope="module")
def dfs(tmp_path_factory):
    from minidfs import MiniDFS

    with MiniDFS(tmp_path_factory.mktemp("faults"), block_size=BS) as d:
        yield d


@pytest.fixture(scope="module")
def client(dfs):
    with connect(dfs.uri) as c:
        c.write_file("/data", os.urandom(8 * BS))  # 8 blocks, 8 read packets of 64 KiB
        yield c


@pytest.fixture(autouse=True)
def _clear(dfs):
    yield
    dfs.faults.clear()


def test_rpc_latency(dfs, client) -> None:
    dfs.faults.rpc_latency = 0.05
    t0 = time.perf_counter()
    for _ in range(5):
        client.get_status("/data")
    assert time.perf_counter() - t0 >= 5 * 0.05
    dfs.faults.rpc_latency = 0
    t0 = time.perf_counter()
    client.get_status("/data")
    assert time.perf_counter() - t0 < 0.05 * 5


def test_packet_latency(dfs, client) -> None:
    dfs.faults.packet_latency = 0.03
    t0 = time.perf_counter()
    data = client.read_file("/data")
    assert len(data) == 8 * BS
    assert time.perf_counter() - t0 >= 8 * 0.03


def test_stream_bandwidth_cap(minidfs_factory) -> None:
    big = minidfs_factory(block_size=1 << 20)
    with connect(big.uri) as c:
        c.write_file("/one-block", os.urandom(1 << 20))
        big.faults.stream_bandwidth = 2 * 1024 * 1024  # 2 MiB/s per stream
        t0 = time.perf_counter()
        with c.open_reader("/one-block") as r:
            assert len(r.read_range(0, 512 * 1024)) == 512 * 1024  # one stream: >= 0.25 s
        assert time.perf_counter() - t0 >= 0.2
        t0 = time.perf_counter()
        c.write_file("/slow-write", os.urandom(512 * 1024))  # writes are capped too
        assert time.perf_counter() - t0 >= 0.2
        big.faults.stream_bandwidth = None
        t0 = time.perf_counter()
        with c.open_reader("/one-block") as r:
            assert len(r.read_range(0, 512 * 1024)) == 512 * 1024
        assert time.perf_counter() - t0 < 0.2


def test_fail_next_rpc(dfs, client) -> None:
    dfs.faults.fail_next("getFileInfo", 2)
    for _ in range(2):
        with pytest.raises(errors.HdfsIOError):
            client.get_status("/data")
    assert client.get_status("/data").length == 8 * BS
    dfs.faults.fail_next("getFileInfo", 1, "org.apache.hadoop.security.AccessControlException",
                         "nope")
    with pytest.raises(errors.PermissionDenied):
        client.get_status("/data")
    dfs.faults.fail_next("mkdirs", 1, "org.apache.hadoop.hdfs.protocol.DSQuotaExceededException")
    with pytest.raises(errors.QuotaExceeded):
        client.mkdirs("/qq")
    client.mkdirs("/qq")


def test_fail_next_datanode_ops(dfs, client) -> None:
    dfs.faults.fail_next("READ_BLOCK", 1)
    with pytest.raises(errors.HdfsIOError):  # replication 1: no other replica to try
        client.read_file("/data")
    assert len(client.read_file("/data")) == 8 * BS
    dfs.faults.fail_next("WRITE_BLOCK", 1)
    with pytest.raises(errors.HdfsIOError):
        client.write_file("/wfail", b"x" * 100)
    client.write_file("/wfail2", b"y" * 100)
    assert client.read_file("/wfail2") == b"y" * 100


def test_stall_reads_for_a_while_and_until_unstalled(dfs, client) -> None:
    dfs.faults.stall_reads(0, 0.4)
    t0 = time.perf_counter()
    with client.open_reader("/data") as r:
        assert len(r.read_range(0, 1000)) == 1000
    assert time.perf_counter() - t0 >= 0.35

    dfs.faults.stall_reads(0)  # forever, until unstall()
    threading.Timer(0.3, dfs.faults.unstall, args=(0,)).start()
    t0 = time.perf_counter()
    with client.open_reader("/data") as r:
        assert len(r.read_range(BS, 1000)) == 1000
    assert time.perf_counter() - t0 >= 0.25


def test_stop_and_start_datanode_keeps_port(dfs, client) -> None:
    port = dfs.datanodes[0].port
    dfs.stop_datanode(0)
    with pytest.raises(errors.HdfsIOError):
        client.read_file("/data")
    dfs.start_datanode(0)
    assert dfs.datanodes[0].port == port
    assert len(client.read_file("/data")) == 8 * BS
