"""What only Apache Hadoop's own HDFS shows, through real FUSE mounts.

minidfs has one NameNode and no erasure coding, so these run on the ``hadoop``
backend only: a NameNode failover under a reader and under a writer (the reader
gets every byte right with no error; the writer's file is complete or its error
is clean; the pause the reader sees is measured), and a Reed-Solomon directory
read byte-exact, with a DataNode of the group stopped in the middle of the read.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time

import pytest

import hdfs_client

pytestmark = [pytest.mark.hadoop, pytest.mark.timeout(600)]

MiB = 1 << 20


def blob(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def ha_cluster(hadoop_dfs_factory, monkeypatch):
    """Two NameNodes behind a nameservice; mounts find it through HADOOP_CONF_DIR."""
    cluster = hadoop_dfs_factory(datanodes=1, ha=True)
    monkeypatch.setenv("HADOOP_CONF_DIR", cluster.hadoop_conf_dir)
    client = hdfs_client.connect(cluster.uri, config=cluster.client_config)
    yield cluster, client
    client.close()


def test_failover_under_a_reader_loses_no_byte(ha_cluster, mount_factory):
    cluster, client = ha_cluster
    files = {f"/ds/f{i:03d}": blob(256 * 1024, i) for i in range(120)}
    for path, data in files.items():
        client.write_file(path, data)
    big = blob(24 * MiB, 999)
    client.write_file("/ds/big", big)
    # a short metadata TTL: every open asks the NameNode, so the reader meets the failover
    m = mount_factory(f"{cluster.uri}/ds", "--read-only", "--metadata-ttl", "0.05")
    errors: list[BaseException] = []
    gaps: list[float] = []
    done = threading.Event()

    def reader() -> None:
        try:
            rounds = 0
            while not done.is_set() or rounds < 2:
                last = time.monotonic()
                for path, data in files.items():
                    got = (m.path / os.path.basename(path)).read_bytes()
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now
                    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), path
                rounds += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(1.0)
    big_sha = hashlib.sha256()
    with open(m.path / "big", "rb") as fh:
        big_sha.update(fh.read(8 * MiB))
        active = cluster.failover()
        big_sha.update(fh.read())
    assert big_sha.digest() == hashlib.sha256(big).digest()
    time.sleep(1.0)
    done.set()
    t.join(300)
    assert not t.is_alive()
    assert not errors, errors
    assert active == 1
    assert cluster.failover() == 0   # and back: the client follows both ways
    assert (m.path / "f000").read_bytes() == files["/ds/f000"]
    pause = max(gaps)
    median = sorted(gaps)[len(gaps) // 2]
    print(f"failover under a reader: {len(gaps)} opens, longest gap {pause * 1000:.0f} ms, "
          f"median {median * 1000:.1f} ms")


def test_failover_under_a_writer_is_complete_or_a_clean_error(ha_cluster, mount_factory):
    cluster, client = ha_cluster
    client.mkdirs("/w")
    m = mount_factory(f"{cluster.uri}/w", "--metadata-ttl", "1")
    data = blob(12 * MiB, 7)            # 12 blocks of 1 MiB: addBlock calls span the failover
    outcome: dict[str, object] = {}

    def writer() -> None:
        try:
            with open(m.path / "out", "wb") as fh:
                for off in range(0, len(data), 256 * 1024):
                    fh.write(data[off:off + 256 * 1024])
                    time.sleep(0.02)
            outcome["ok"] = True
        except OSError as exc:
            outcome["error"] = exc

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.5)
    cluster.failover()
    t.join(300)
    assert not t.is_alive()
    if outcome.get("ok"):
        assert client.read_file("/w/out") == data       # complete, every byte right
    else:
        err = outcome["error"]
        assert isinstance(err, OSError) and err.errno is not None, err
        # a clean error: the file is never left looking complete with wrong bytes
        try:
            got = client.read_file("/w/out")
        except hdfs_client.errors.NotFound:
            got = None
        assert got is None or got == data[:len(got)], "a failed write left wrong bytes"
    print(f"failover under a writer: {'completed' if outcome.get('ok') else outcome['error']}")


def test_erasure_coded_directory_reads_exact_with_a_datanode_stopped(hadoop_dfs_factory,
                                                                     mount_factory):
    # RS-3-2 needs 5 DataNodes (3 data + 2 parity cells per stripe); cells of 1 MiB
    cluster = hadoop_dfs_factory(datanodes=5, ec_policies=("RS-3-2-1024k",))
    cluster.set_ec_policy("/ec", "RS-3-2-1024k")
    data = blob(14 * MiB + 12345, 3)    # several block groups and a partial stripe
    with hdfs_client.connect(cluster.uri) as client:
        client.write_file("/ec/f", data)
        assert client.get_status("/ec/f").length == len(data)
    m = mount_factory(f"{cluster.uri}/ec", "--read-only")
    assert (m.path / "f").read_bytes() == data
    # a second mount (cold cache): read half, lose a DataNode of the group, read the rest
    m2 = mount_factory(f"{cluster.uri}/ec", "--read-only", name="ec-degraded")
    with open(m2.path / "f", "rb") as fh:
        first = fh.read(6 * MiB)
        cluster.stop_datanode(0, dead=True)
        rest = fh.read()
    assert first + rest == data
    # a fresh open with the DataNode still down decodes from parity as well
    m3 = mount_factory(f"{cluster.uri}/ec", "--read-only", name="ec-fresh")
    assert hashlib.sha256((m3.path / "f").read_bytes()).digest() == hashlib.sha256(data).digest()
