"""Several DataNodes: replica placement, pipelines, failover, re-replication."""

from __future__ import annotations

import os
import threading
import time

import wire_kit as wk
import pytest

from hdfs_client import connect, errors
from hdfs_client.admin_rpc import AdminRpcClient
from hdfs_csi_pb.hadoop import datatransfer_pb2 as dt
from hdfs_csi_pb.hadoop import namenode_pb2 as nn

pytestmark = pytest.mark.timeout(120)

BS = 64 * 1024


def _locations(dfs, path):
    with AdminRpcClient(dfs.uri) as admin:
        lbs = wk.located_blocks(admin, path)
    ports = {dn.port: dn.index for dn in dfs.datanodes}
    return [[ports[loc.id.xferPort] for loc in b.locs] for b in lbs.blocks]


def _wait(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_blocks_are_replicated_and_spread(minidfs_factory) -> None:
    dfs = minidfs_factory(datanodes=3, block_size=BS, replication=2)
    payload = os.urandom(6 * BS)
    with connect(dfs.uri) as c:
        c.write_file("/rep/f", payload)
        assert c.get_status("/rep/f").replication == 2
    locs = _locations(dfs, "/rep/f")
    assert all(len(set(loc)) == 2 for loc in locs)
    assert {loc[0] for loc in locs} == {0, 1, 2}  # first replicas rotate over the DataNodes
    for i in range(3):  # any single DataNode may die
        dfs.stop_datanode(i)
        with connect(dfs.uri) as c:
            assert c.read_file("/rep/f") == payload
        dfs.start_datanode(i)


def test_pipeline_acks_one_reply_per_node(minidfs_factory) -> None:
    dfs = minidfs_factory(datanodes=2, block_size=BS)
    admin = AdminRpcClient(dfs.uri)
    req = nn.CreateRequestProto(src="/pipe", clientName="wirekit", createFlag=1,
                                createParent=True, replication=2, blockSize=BS)
    req.masked.perm = 0o644
    admin.raw_call("create", req, nn.CreateResponseProto)
    lb = admin.raw_call("addBlock", nn.AddBlockRequestProto(src="/pipe", clientName="wirekit"),
                        nn.AddBlockResponseProto).block
    assert len(lb.locs) == 2 and len(lb.storageIDs) == 2
    first = lb.locs[0].id
    data = os.urandom(5000)
    with wk.connect(first.ipAddr, first.xferPort) as sock:
        resp = wk.write_block_op(sock, lb.b, dt.OpWriteBlockProto.PIPELINE_SETUP_CREATE,
                                 targets=[lb.locs[1]])
        assert resp.status == dt.SUCCESS
        wk.send_packet(sock, 0, 0, data)
        wk.send_packet(sock, 5000, 1, b"", last=True)
        for seq in (0, 1):
            ack = wk.read_ack(sock)
            assert ack.seqno == seq and list(ack.reply) == [dt.SUCCESS, dt.SUCCESS]
    lb.b.numBytes = 5000
    req = nn.CompleteRequestProto(src="/pipe", clientName="wirekit")
    req.last.CopyFrom(lb.b)
    assert admin.raw_call("complete", req, nn.CompleteResponseProto).result
    for dn in dfs.datanodes:  # both replicas were written by the one pipeline
        assert dn.visible_length(lb.b.blockId) == 5000
    admin.close()


def test_datanode_stopped_mid_read_with_replication_2(minidfs_factory) -> None:
    dfs = minidfs_factory(datanodes=2, block_size=BS, replication=2)
    payload = os.urandom(4 * BS + 999)
    with connect(dfs.uri) as c:
        c.write_file("/mid/f", payload)
    locs = _locations(dfs, "/mid/f")
    victim = locs[0][0]  # the replica the reader tries first for block 0
    dfs.faults.stall_reads(victim)  # the read starts, then hangs on the victim ...
    result: dict[str, object] = {}

    def reader() -> None:
        try:
            with connect(dfs.uri) as c:
                result["data"] = c.read_file("/mid/f")
        except BaseException as exc:  # noqa: BLE001
            result["error"] = exc

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.5)
    assert t.is_alive(), "read finished before the DataNode was stopped"
    dfs.stop_datanode(victim)  # ... until its DataNode dies mid-stream
    t.join(30)
    dfs.faults.unstall()
    assert "error" not in result, result.get("error")
    assert result["data"] == payload


def test_replication_1_read_fails_cleanly_then_recovers(minidfs_factory) -> None:
    dfs = minidfs_factory(datanodes=2, block_size=BS, replication=1)
    payload = os.urandom(3 * BS)
    with connect(dfs.uri) as c:
        c.write_file("/one/f", payload)
        holders = {loc[0] for loc in _locations(dfs, "/one/f")}
        victim = holders.pop()
        dfs.stop_datanode(victim)
        with pytest.raises(errors.HdfsIOError) as info:
            c.read_file("/one/f")
        assert type(info.value.__cause__).__name__ != "PanicException"
        assert c.get_status("/one/f").length == len(payload)  # metadata still served
        port = dfs.datanodes[victim].port
        dfs.start_datanode(victim)
        assert dfs.datanodes[victim].port == port  # same address after restart
        assert c.read_file("/one/f") == payload


def test_writes_avoid_dead_datanodes_and_rereplicate(minidfs_factory) -> None:
    dfs = minidfs_factory(datanodes=3, block_size=BS, replication=2, monitor_interval=0.1)
    dfs.stop_datanode(2)
    payload = os.urandom(3 * BS)
    with connect(dfs.uri) as c:
        c.write_file("/wd/f", payload)
        assert all(set(loc) == {0, 1} for loc in _locations(dfs, "/wd/f"))
        dfs.start_datanode(2)
        assert c.set_replication("/wd/f", 3) is True
        assert _wait(lambda: all(len(loc) == 3 for loc in _locations(dfs, "/wd/f")))
        dfs.stop_datanode(0)
        dfs.stop_datanode(1)
        assert c.read_file("/wd/f") == payload  # served from the re-replicated copy


def test_no_live_datanode_fails_write_cleanly(minidfs_factory) -> None:
    dfs = minidfs_factory(datanodes=1, block_size=BS)
    dfs.stop_datanode(0)
    with connect(dfs.uri) as c:
        with pytest.raises(errors.HdfsIOError):
            c.write_file("/nodn/f", b"x" * 10)
        dfs.start_datanode(0)
        c.write_file("/nodn/g", b"y" * 10)
        assert c.read_file("/nodn/g") == b"y" * 10


def test_downstream_datanode_dies_during_write(minidfs_factory) -> None:
    """Losing a secondary replica mid-block does not fail the write; the block simply has
    fewer replicas until re-replication."""
    from minidfs_kit import native_as

    dfs = minidfs_factory(datanodes=2, block_size=BS, replication=2)
    c = native_as(dfs.uri)
    w = c.create("/down/f")
    first = os.urandom(1000)
    w.write(first)
    w.hsync()
    f = dfs.ns._resolve("/down/f").last
    pipeline = list(dfs.ns.bm.replicas[f.blocks[-1].id])
    assert len(pipeline) == 2
    dfs.stop_datanode(pipeline[1])
    rest = os.urandom(BS)  # finishes block 1 and writes block 2 on the survivor only
    w.write(rest)
    w.close()
    with c.read("/down/f") as r:
        assert r.read() == first + rest
    block0 = f.blocks[0].id
    assert dfs.ns.bm.replicas[block0] == [pipeline[0]]  # the dead replica was dropped
    dfs.start_datanode(pipeline[1])  # its partial rbw copy is discarded by the block report
    assert dfs.datanodes[pipeline[1]].visible_length(block0) is None
