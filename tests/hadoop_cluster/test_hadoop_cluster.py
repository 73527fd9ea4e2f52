"""The ``hadoop`` backend itself: Apache Hadoop's MiniDFSCluster driven by hadoop_cluster.

What must hold for the rest of the suite to trust it: it starts and says
where it is; our seam (hdfs-native) reads and writes through it; a DataNode
stops and comes back on the same port with its blocks; an HA pair fails over
with clients following; an erasure-coded directory stores and decodes; and no
JVM outlives its cluster, however the owner ends.

Cluster starts cost ~10 s each on two cores, so each fixture serves a module.
"""

from __future__ import annotations

import getpass
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hdfs_client
from hdfs_backends import backend_unavailable

pytestmark = [pytest.mark.hadoop, pytest.mark.timeout(600)]

MiB = 1 << 20
REPO = Path(__file__).resolve().parents[2]


def _require_hadoop() -> None:
    reason = backend_unavailable("hadoop")
    if reason is None:
        return
    if os.environ.get("CI"):  # CI runs this tier on purpose: missing tools are a failure
        pytest.fail(f"hadoop backend unavailable in CI: {reason}")
    pytest.skip(reason)


def _blob(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line mentions ``text`` (our data dir): leftovers of a cluster."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and _alive(int(entry)):
            found.append(int(entry))
    return found


def _wait_until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster5(tmp_path_factory: pytest.TempPathFactory, _hadoop_env_cleared: None) -> Iterator[Any]:
    """Five DataNodes (enough for RS-3-2), replication 3, 1 MiB blocks."""
    _require_hadoop()
    from hadoop_cluster import HadoopCluster

    with HadoopCluster(tmp_path_factory.mktemp("hadoop5"), datanodes=5, block_size=MiB,
                       ec_policies=("RS-3-2-1024k",)) as c:
        yield c


@pytest.fixture(scope="module")
def client5(cluster5: Any) -> Iterator[Any]:
    with hdfs_client.connect(cluster5.uri, config=cluster5.client_config) as c:
        yield c


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory, _hadoop_env_cleared: None) -> Iterator[Any]:
    """Two NameNodes behind the nameservice ``hdfs-csi``, two DataNodes."""
    _require_hadoop()
    from hadoop_cluster import HadoopCluster

    with HadoopCluster(tmp_path_factory.mktemp("hadoop-ha"), datanodes=2, block_size=MiB,
                       ha=True) as c:
        yield c


# -- start-up and what it reports ------------------------------------------------------------

def test_started_cluster_says_where_it_is(cluster5: Any) -> None:
    c = cluster5
    assert c.running() and c.backend == "hadoop"
    assert c.uri == f"hdfs://127.0.0.1:{c.port}" and c.namenode_uris == [c.uri]
    assert len(c.datanode_addresses) == c.num_datanodes == 5
    assert all(a.startswith("127.0.0.1:") for a in c.datanode_addresses)
    assert len(set(c.datanode_addresses)) == 5
    for addr in [c.uri[len("hdfs://"):], *c.datanode_addresses]:  # really listening
        host, port = addr.rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=5).close()
    assert c.superuser == getpass.getuser()
    assert c.client_config == {"fs.defaultFS": c.uri}
    core = Path(c.hadoop_conf_dir, "core-site.xml").read_text()
    assert f"<value>{c.uri}</value>" in core
    assert Path(c.log_file).is_file()
    st = c.status()
    assert st["block_size"] == MiB and st["replication"] == 3
    assert "RS-3-2-1024k" in st["ec_policies"]
    print(f"hadoop cold start (5 DataNodes): {c.startup_seconds:.1f}s")


def test_seam_writes_and_reads_through_hadoop(cluster5: Any, client5: Any) -> None:
    data = _blob(3 * MiB + 12_345, 1)           # four blocks, unaligned tail
    with client5.create("/rw/f.bin", create_parent=True) as w:
        w.write(data[:700_001])
        w.hsync()
        w.write(data[700_001:])
    st = client5.get_status("/rw/f.bin")
    assert (st.length, st.block_size, st.replication) == (len(data), MiB, 3)
    assert st.owner == cluster5.superuser and st.group == "supergroup"
    assert client5.read_file("/rw/f.bin") == data
    with client5.open_reader("/rw/f.bin") as r:  # ranged reads across block boundaries
        assert r.read_range(MiB - 7, 20) == data[MiB - 7:MiB + 13]
        assert r.read_range(3 * MiB, 1 << 20) == data[3 * MiB:]
    with client5.append("/rw/f.bin") as w:
        w.write(b"tail")
    assert client5.read_file("/rw/f.bin") == data + b"tail"
    client5.rename("/rw/f.bin", "/rw/g.bin")
    assert [s.path for s in client5.list_dir("/rw")] == ["/rw/g.bin"]
    assert client5.delete("/rw", recursive=True)
    with pytest.raises(hdfs_client.errors.NotFound):
        client5.get_status("/rw")


def test_datanode_stops_and_comes_back_on_its_port(cluster5: Any, client5: Any) -> None:
    data = _blob(2 * MiB + 99, 2)
    client5.write_file("/dn/f.bin", data)
    before = client5.fs_stats().capacity
    port = cluster5.datanode_addresses[0]
    # a plain stop is a crash the NameNode has not noticed: readers must step past it
    cluster5.stop_datanode(0)
    assert [d["running"] for d in cluster5.status()["datanodes"]] == [False] + [True] * 4
    with pytest.raises(OSError):
        socket.create_connection(tuple(_hostport(port)), timeout=2).close()
    assert client5.read_file("/dn/f.bin") == data
    cluster5.start_datanode(0)
    assert cluster5.datanode_addresses[0] == port
    socket.create_connection(tuple(_hostport(port)), timeout=5).close()
    assert client5.read_file("/dn/f.bin") == data
    # "dead": the NameNode drops it from the live set at once (its capacity goes)
    cluster5.stop_datanode(0, dead=True)
    _wait_until(lambda: client5.fs_stats().capacity < before, 30, "capacity to drop")
    assert client5.read_file("/dn/f.bin") == data
    cluster5.start_datanode(0)
    _wait_until(lambda: client5.fs_stats().capacity >= before * 0.99, 60,
                "the restarted DataNode to report its capacity")


def test_namenode_stops_and_comes_back_without_ha(cluster5: Any, client5: Any) -> None:
    """Without HA, a stopped NameNode is a cluster that refuses connections; its status
    still answers (the launcher used to fail with a NullPointerException here)."""
    client5.write_file("/nn/f", b"kept")
    uri = cluster5.uri
    cluster5.stop_namenode(0)
    status = cluster5.status()
    assert [n["running"] for n in status["namenodes"]] == [False]
    assert status["uri"] == uri
    cluster5.start_namenode(0)
    assert cluster5.status()["namenodes"][0]["running"]
    _wait_until(lambda: _reads(client5, "/nn/f") == b"kept", 60, "reads after the restart")


def _reads(client: Any, path: str) -> bytes | None:
    try:
        return bytes(client.read_file(path))
    except Exception:  # noqa: BLE001 - still in safe mode or reconnecting
        return None


def _hostport(addr: str) -> tuple[str, int]:
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def test_erasure_coded_directory_decodes_without_a_datanode(cluster5: Any, client5: Any) -> None:
    cluster5.set_ec_policy("/ec", "RS-3-2-1024k")
    data = _blob(7 * MiB + 4_321, 3)            # a full block group and a partial stripe
    client5.write_file("/ec/f.bin", data)
    assert client5.get_status("/ec/f.bin").length == len(data)
    assert client5.read_file("/ec/f.bin") == data
    # RS-3-2 on five DataNodes puts a cell of every stripe on each: any one may go
    cluster5.stop_datanode(2, dead=True)
    try:
        assert client5.read_file("/ec/f.bin") == data
        with client5.open_reader("/ec/f.bin") as r:
            assert r.read_range(3 * MiB - 10, 20) == data[3 * MiB - 10:3 * MiB + 10]
    finally:
        cluster5.start_datanode(2)


def test_unknown_command_and_bad_policy_are_clean_errors(cluster5: Any) -> None:
    from hadoop_cluster import HadoopClusterError

    with pytest.raises(HadoopClusterError, match="unknown command"):
        cluster5.command("frobnicate")
    with pytest.raises(HadoopClusterError, match="(?i)policy"):
        cluster5.set_ec_policy("/ec-bad", "NO-SUCH-POLICY")
    with pytest.raises(HadoopClusterError, match="HA"):
        cluster5.failover()
    assert cluster5.status()["ok"]  # the cluster is still serving


# -- HA ---------------------------------------------------------------------------------------

def test_ha_cluster_is_reached_through_its_nameservice(ha: Any) -> None:
    assert ha.uri == "hdfs://hdfs-csi"
    assert len(ha.namenode_uris) == 2 and ha.active_namenode == 0
    conf = ha.client_config
    assert conf["dfs.nameservices"] == "hdfs-csi"
    assert conf["dfs.ha.namenodes.hdfs-csi"] == "nn1,nn2"
    for i, nn in enumerate(("nn1", "nn2")):
        assert f"hdfs://{conf[f'dfs.namenode.rpc-address.hdfs-csi.{nn}']}" == ha.namenode_uris[i]
    site = Path(ha.hadoop_conf_dir, "hdfs-site.xml").read_text()
    assert "dfs.ha.namenodes.hdfs-csi" in site
    print(f"hadoop cold start (HA, 2 DataNodes): {ha.startup_seconds:.1f}s")


def test_clients_follow_a_failover_both_ways(ha: Any) -> None:
    data = _blob(2 * MiB + 5, 4)
    by_conf = hdfs_client.connect(ha.uri, config=ha.client_config)
    by_dir = hdfs_client.connect(ha.uri, config_dir=ha.hadoop_conf_dir)  # as HADOOP_CONF_DIR
    by_conf.write_file("/ha/one.bin", data)
    reader = by_conf.open_reader("/ha/one.bin")   # opened before the failover
    t0 = time.monotonic()
    assert ha.failover() == 1
    assert ha.active_namenode == 1
    print(f"failover command took {(time.monotonic() - t0) * 1000:.0f} ms")
    assert reader.read_range(0, len(data)) == data
    reader.close()
    assert by_dir.read_file("/ha/one.bin") == data
    by_dir.write_file("/ha/two.bin", data[::-1])
    assert by_conf.read_file("/ha/two.bin") == data[::-1]
    assert by_conf.fs_stats().capacity > 0        # our admin RPC client fails over too
    by_conf.set_quota("/ha", 100, None)
    assert by_conf.content_summary("/ha").quota == 100
    assert ha.failover() == 0
    assert by_conf.read_file("/ha/two.bin") == data[::-1]
    assert by_conf.content_summary("/ha").quota == 100
    by_conf.close()
    by_dir.close()


def test_stopped_active_namenode_then_failover(ha: Any) -> None:
    client = hdfs_client.connect(ha.uri, config=ha.client_config)
    client.write_file("/ha/three.bin", b"three")
    active = ha.active_namenode
    ha.stop_namenode(active)
    assert ha.active_namenode == -1
    survivor = ha.failover()
    assert survivor != active and ha.active_namenode == survivor
    assert client.read_file("/ha/three.bin") == b"three"
    client.write_file("/ha/four.bin", b"four")
    ha.start_namenode(active)                       # back as standby
    states = {nn["index"]: nn["state"] for nn in ha.status()["namenodes"]}
    assert states == {active: "standby", survivor: "active"}
    assert client.read_file("/ha/four.bin") == b"four"
    client.close()


# -- no JVM left behind -----------------------------------------------------------------------

def test_conf_applies_off_the_command_line_and_stop_leaves_no_process(
        tmp_path: Path, _hadoop_env_cleared: None) -> None:
    _require_hadoop()
    from hadoop_cluster import HadoopCluster

    # conf reaches the NameNode through a 0600 file, never argv (secure-mode values)
    c = HadoopCluster(tmp_path / "h", datanodes=1,
                      conf={"dfs.permissions.superusergroup": "hdfs-csi-admins"}).start()
    pid = c.pid
    assert _alive(pid) and _processes_mentioning(str(tmp_path / "h")) == [pid]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"hdfs-csi-admins" not in f.read()
    assert os.stat(tmp_path / "h" / "launcher-conf.xml").st_mode & 0o077 == 0
    assert c.status()["supergroup"] == "hdfs-csi-admins"
    with hdfs_client.connect(c.uri) as client:
        assert client.get_status("/").group == "hdfs-csi-admins"   # formatted with it
    c.restart()                                     # in place: same NameNode port
    port = c.port
    with hdfs_client.connect(c.uri) as client:
        client.write_file("/r", b"after restart")
        assert client.read_file("/r") == b"after restart"
    assert c.port == port
    c.stop()
    assert not _alive(pid)
    assert _processes_mentioning(str(tmp_path / "h")) == []
    c.stop()                                        # idempotent
    # keep_data: a new JVM on the same directory serves the same namespace and blocks
    with HadoopCluster(tmp_path / "h", datanodes=1, keep_data=True) as again:
        with hdfs_client.connect(again.uri) as client:
            assert client.read_file("/r") == b"after restart"
    assert _processes_mentioning(str(tmp_path / "h")) == []


def test_jvm_exits_when_its_owner_is_killed(tmp_path: Path, _hadoop_env_cleared: None) -> None:
    _require_hadoop()
    data_dir = tmp_path / "orphan"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from hadoop_cluster import HadoopCluster
        c = HadoopCluster({str(data_dir)!r}, datanodes=1).start()
        print(c.pid, flush=True)
        time.sleep(600)
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line.strip().isdigit(), f"owner printed {line!r}"
        jvm = int(line)
        assert _alive(jvm)
        owner.send_signal(signal.SIGKILL)           # no cleanup code runs in the owner
        owner.wait()
        _wait_until(lambda: not _alive(jvm), 90, "the orphaned JVM to exit on stdin EOF")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        for pid in _processes_mentioning(str(data_dir)):  # never leave one behind
            os.kill(pid, signal.SIGKILL)


def test_start_failure_is_reported_with_the_log(tmp_path: Path,
                                                _hadoop_env_cleared: None) -> None:
    _require_hadoop()
    from hadoop_cluster import HadoopCluster, HadoopClusterError

    c = HadoopCluster(tmp_path / "bad", datanodes=0, ec_policies=("NO-SUCH-POLICY",))
    with pytest.raises(HadoopClusterError, match="failed to start") as info:
        c.start()
    assert "NO-SUCH-POLICY" in str(info.value)
    assert not c.running()
    assert _processes_mentioning(str(tmp_path / "bad")) == []
