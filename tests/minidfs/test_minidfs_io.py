"""Data path: multi-block writes and reads, append, hsync, leases, checksums."""

from __future__ import annotations

import os
import random
import threading
import time

import wire_kit as wk
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minidfs_kit import native_as

from hdfs_client import connect, errors
from hdfs_csi_pb.hadoop import datatransfer_pb2 as dt
from hdfs_csi_pb.hadoop import namenode_pb2 as nn

pytestmark = pytest.mark.timeout(120)

BS = 64 * 1024  # small blocks: multi-block files stay small


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from minidfs import MiniDFS

    with MiniDFS(tmp_path_factory.mktemp("io"), block_size=BS) as dfs:
        yield dfs


@pytest.fixture(scope="module")
def blob(small):
    """A 10.5-block file shared by the read tests."""
    data = random.Random(7).randbytes(10 * BS + BS // 2 + 123)
    with connect(small.uri) as c:
        c.write_file("/blob", data)
    return data


@pytest.fixture(scope="module")
def client(small):
    # One long-lived client per module: hdfs-native keeps DataNode connections in a
    # process-wide pool, and a pooled connection of a *closed* client can fail the
    # next read of another client ("Tokio context is being shutdown").
    with connect(small.uri) as c:
        yield c


def test_multi_block_write_read_is_byte_exact(client, small, blob) -> None:
    st_ = client.get_status("/blob")
    assert st_.length == len(blob) and st_.block_size == BS
    assert client.read_file("/blob") == blob
    admin_blocks = _blocks(small, "/blob")
    assert len(admin_blocks.blocks) == 11
    assert [b.offset for b in admin_blocks.blocks] == [i * BS for i in range(11)]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(0, 10 * BS + BS // 2 + 122), length=st.integers(1, 3 * BS + 7))
def test_random_range_reads(client, blob, offset: int, length: int) -> None:
    with client.open_reader("/blob") as r:
        assert r.read_range(offset, length) == blob[offset:offset + length]


def _blocks(dfs, path, offset=0, length=2**63 - 1):
    from hdfs_client.admin_rpc import AdminRpcClient

    with AdminRpcClient(dfs.uri) as admin:
        return wk.located_blocks(admin, path, offset, length)


def test_get_block_locations_honours_offset_and_length(small, blob) -> None:
    lbs = _blocks(small, "/blob", offset=3 * BS + 10, length=2 * BS)
    assert [b.offset for b in lbs.blocks] == [3 * BS, 4 * BS, 5 * BS]
    assert lbs.fileLength == len(blob) and lbs.isLastBlockComplete and not lbs.underConstruction
    assert lbs.lastBlock.offset == 10 * BS and lbs.lastBlock.b.numBytes == BS // 2 + 123
    for b in lbs.blocks:  # one storage type / id per location: hdfs-native indexes [0]
        assert len(b.locs) == len(b.storageTypes) == len(b.storageIDs) == 1
        assert b.b.HasField("numBytes")
    assert _blocks(small, "/blob", offset=len(blob) + 5, length=10).blocks == []


def test_read_packets_carry_valid_crcs_and_seqnos(small, blob) -> None:
    lbs = _blocks(small, "/blob")
    blk = lbs.blocks[1]
    loc = blk.locs[0].id
    with wk.connect(loc.ipAddr, loc.xferPort) as sock:
        resp, packets = wk.read_block(sock, blk.b, 1000, 5000)
        assert resp.status == dt.SUCCESS
        assert resp.readOpChecksumInfo.chunkOffset == 512  # rounded down to a chunk
        assert [p.seqno for p in packets] == list(range(len(packets)))
        assert packets[-1].last and packets[-1].data == b""
        data = b"".join(p.data for p in packets)
        assert data == blob[BS + 512:BS + 512 + len(data)] and len(data) == 5632
        for p in packets[:-1]:
            assert p.crcs == wk.crcs_for(p.data)
        # the connection is reusable for a second op, and an unknown block is a clean error
        bad = type(blk.b)()
        bad.CopyFrom(blk.b)
        bad.blockId = 12345
        resp, packets = wk.read_block(sock, bad, 0, 10)
        assert resp.status == dt.ERROR and packets == []
        resp, packets = wk.read_block(sock, blk.b, 0, 10, checksums=False)
        assert resp.readOpChecksumInfo.checksum.type == 0 and packets[0].crcs == b""


def test_empty_file_and_overwrite(client) -> None:
    client.write_file("/ow/empty", b"")
    assert client.get_status("/ow/empty").length == 0
    assert client.read_file("/ow/empty") == b""
    client.write_file("/ow/f", b"first version" * 1000)
    first_id = _file_id(client, "/ow/f")
    with pytest.raises(errors.AlreadyExists):
        client.create("/ow/f")
    client.write_file("/ow/f", b"second", overwrite=True)
    assert client.read_file("/ow/f") == b"second"
    assert _file_id(client, "/ow/f") != first_id  # OVERWRITE gives a new inode


def _file_id(client, path):
    from hdfs_client.admin_rpc import AdminRpcClient

    with AdminRpcClient(client.uri) as admin:
        return admin.raw_call("getFileInfo", nn.GetFileInfoRequestProto(src=path),
                              nn.GetFileInfoResponseProto).fs.fileId


def test_append_variants(client) -> None:
    expected = b""
    client.write_file("/ap/f", b"")
    for piece in (b"a" * 777, b"b" * 1500, os.urandom(BS + 300), b"c", os.urandom(2 * BS)):
        with client.append("/ap/f") as w:
            w.write(piece)
        expected += piece
        assert client.read_file("/ap/f") == expected
    # exactly one full block, then append: the next block is a new one
    client.write_file("/ap/g", b"z" * BS)
    with client.append("/ap/g") as w:
        w.write(b"tail")
    assert client.read_file("/ap/g") == b"z" * BS + b"tail"
    with pytest.raises(errors.NotFound):
        client.append("/ap/missing")


def test_hsync_makes_length_visible_before_close(small, client) -> None:
    """As on HDFS: after hsync (fsync with the length) getFileInfo counts the bytes, but
    a new hdfs-native reader reads the completed blocks only (getBlockLocations leaves
    the block under construction out of fileLength; Java readers ask the DataNode)."""
    writer_client = native_as(small.uri)
    w = writer_client.create("/hs/f")
    part1 = os.urandom(BS + 1000)
    w.write(part1)
    w.hsync()
    st_ = client.get_status("/hs/f")
    assert st_.length == len(part1)
    assert client.read_file("/hs/f") == part1[:BS]
    # the durable length reached the NameNode (fsync RPC / synced packet)
    f = small.ns.inodes[_file_id(client, "/hs/f")]
    assert f.blocks[-1].num_bytes == 1000
    w.write(b"more")
    w.close()
    assert client.read_file("/hs/f") == part1 + b"more"


def test_leases_conflict_and_recover(small, client) -> None:
    a = native_as(small.uri)
    w = a.create("/lease/f")
    w.write(b"x" * 3000)
    w.hsync()
    with pytest.raises((errors.LeaseConflict, errors.AlreadyExists)):
        client.append("/lease/f")
    with pytest.raises((errors.LeaseConflict, errors.AlreadyExists)):
        client.create("/lease/f", overwrite=True)
    assert client.recover_lease("/lease/f") is True
    assert client.read_file("/lease/f") == b"x" * 3000
    # the old writer lost its lease: closing fails instead of corrupting the file
    with pytest.raises(BaseException):  # noqa: B017 - RuntimeError or PanicException
        w.write(b"y" * 100)
        w.close()
    assert client.read_file("/lease/f") == b"x" * 3000
    with client.append("/lease/f") as w2:
        w2.write(b"z")
    assert client.read_file("/lease/f") == b"x" * 3000 + b"z"


def test_lease_soft_and_hard_limits(minidfs_factory) -> None:
    dfs = minidfs_factory(block_size=BS, lease_soft_limit=0.3, lease_hard_limit=1.0,
                          monitor_interval=0.1)
    from hdfs_client.admin_rpc import AdminRpcClient

    admin = AdminRpcClient(dfs.uri)
    req = nn.CreateRequestProto(src="/soft", clientName="DFSClient_gone", createFlag=1,
                                createParent=True, replication=1, blockSize=BS)
    req.masked.perm = 0o644
    admin.raw_call("create", req, nn.CreateResponseProto)
    admin.raw_call("renewLease", nn.RenewLeaseRequestProto(clientName="DFSClient_gone"),
                   nn.RenewLeaseResponseProto)
    time.sleep(0.5)  # past the soft limit: another client may take the file over
    with connect(dfs.uri) as c:
        with c.append("/soft") as w:
            w.write(b"taken over")
        assert c.read_file("/soft") == b"taken over"
        req.src = "/hard"
        admin.raw_call("create", req, nn.CreateResponseProto)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the hard limit closes it by itself
            if not dfs.ns.inodes[dfs.ns._resolve("/hard").last.id].under_construction:
                break
            time.sleep(0.1)
        else:
            pytest.fail("hard lease limit did not close the file")
    admin.close()


def test_concurrent_readers_and_writers(small, blob) -> None:
    errors_seen: list[BaseException] = []
    payloads = {f"/conc/w{i}": os.urandom(3 * BS + i * 1111) for i in range(4)}
    clients = [connect(small.uri) for _ in range(8)]  # closed only after all threads end

    def writer(path: str, data: bytes) -> None:
        try:
            clients[int(path[-1])].write_file(path, data)
        except BaseException as exc:  # noqa: BLE001
            errors_seen.append(exc)

    def reader(seed: int) -> None:
        try:
            rnd = random.Random(seed)
            with clients[4 + seed].open_reader("/blob") as r:
                for _ in range(20):
                    off = rnd.randrange(len(blob))
                    n = rnd.randrange(1, 2 * BS)
                    assert r.read_range(off, n) == blob[off:off + n]
        except BaseException as exc:  # noqa: BLE001
            errors_seen.append(exc)

    threads = [threading.Thread(target=writer, args=kv) for kv in payloads.items()]
    threads += [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors_seen, errors_seen
    for path, data in payloads.items():
        assert clients[0].read_file(path) == data
    for c in clients:
        c.close()


def _raw_block(small, path: str):
    """create + addBlock as a hand-rolled client: returns (admin, LocatedBlockProto)."""
    from hdfs_client.admin_rpc import AdminRpcClient

    admin = AdminRpcClient(small.uri)
    req = nn.CreateRequestProto(src=path, clientName="wirekit", createFlag=1,
                                createParent=True, replication=1, blockSize=BS)
    req.masked.perm = 0o644
    admin.raw_call("create", req, nn.CreateResponseProto)
    lb = admin.raw_call("addBlock", nn.AddBlockRequestProto(src=path, clientName="wirekit"),
                        nn.AddBlockResponseProto).block
    return admin, lb


def test_write_checksums_are_verified(small, client) -> None:
    """A packet whose CRC does not match its data is refused with ERROR_CHECKSUM."""
    admin, lb = _raw_block(small, "/crc/f")
    loc = lb.locs[0].id
    data = b"d" * 2048
    with wk.connect(loc.ipAddr, loc.xferPort) as sock:
        resp = wk.write_block_op(sock, lb.b, dt.OpWriteBlockProto.PIPELINE_SETUP_CREATE)
        assert resp.status == dt.SUCCESS
        wk.send_packet(sock, 0, 0, data[:1024])
        bad = bytearray(wk.crcs_for(data[1024:]))
        bad[5] ^= 0xFF
        wk.send_packet(sock, 1024, 1, data[1024:], crcs=bytes(bad))
        assert wk.read_ack(sock).reply[0] == dt.SUCCESS
        ack = wk.read_ack(sock)
        assert ack.seqno == 1 and ack.reply[0] == dt.ERROR_CHECKSUM
    # only the verified packet ever became visible
    assert small.datanodes[0].visible_length(lb.b.blockId) == 1024
    admin.close()


def test_overlapping_and_unaligned_packets(small, client) -> None:
    """Java's hflush re-sends the last partial chunk; appends start unaligned."""
    admin, lb = _raw_block(small, "/ovl/f")
    loc = lb.locs[0].id
    payload = os.urandom(3000)
    with wk.connect(loc.ipAddr, loc.xferPort) as sock:
        resp = wk.write_block_op(sock, lb.b, dt.OpWriteBlockProto.PIPELINE_SETUP_CREATE)
        assert resp.status == dt.SUCCESS
        wk.send_packet(sock, 0, 0, payload[:1000])                  # 0..1000
        wk.send_packet(sock, 512, 1, payload[512:1900], sync=True)  # re-sends 512..1000
        wk.send_packet(sock, 1900, 2, payload[1900:3000])           # unaligned start
        wk.send_packet(sock, 3000, 3, b"", last=True)
        acks = [wk.read_ack(sock) for _ in range(4)]
        assert [a.seqno for a in acks] == [0, 1, 2, 3]
        assert all(a.reply[0] == dt.SUCCESS for a in acks)
    last = lb.b
    last.numBytes = 3000
    req = nn.CompleteRequestProto(src="/ovl/f", clientName="wirekit")
    req.last.CopyFrom(last)
    assert admin.raw_call("complete", req, nn.CompleteResponseProto).result
    # read back through hdfs-native, which verifies every CRC the DataNode sends
    assert client.read_file("/ovl/f") == payload
    with client.open_reader("/ovl/f") as r:
        assert r.read_range(700, 1500) == payload[700:2200]
    admin.close()


def test_java_style_append_with_pipeline_update(small, client) -> None:
    """append -> updateBlockForPipeline (new generation stamp) -> WRITE_BLOCK
    PIPELINE_SETUP_APPEND -> updatePipeline -> packets -> complete, as Java does it."""
    from hdfs_client.admin_rpc import AdminRpcClient

    base = os.urandom(1500)
    client.write_file("/japp/f", base)
    admin = AdminRpcClient(small.uri)
    resp = admin.raw_call("append", nn.AppendRequestProto(src="/japp/f", clientName="javaish",
                                                          flag=4),
                          nn.AppendResponseProto)
    assert resp.HasField("block") and resp.stat.length == 1500
    old = resp.block.b
    assert old.numBytes == 1500
    upd = admin.raw_call("updateBlockForPipeline",
                         nn.UpdateBlockForPipelineRequestProto(block=old, clientName="javaish"),
                         nn.UpdateBlockForPipelineResponseProto).block
    assert upd.b.generationStamp > old.generationStamp
    new_block = type(old)()
    new_block.CopyFrom(old)
    new_block.generationStamp = upd.b.generationStamp
    loc = resp.block.locs[0].id
    extra = os.urandom(3000)
    with wk.connect(loc.ipAddr, loc.xferPort) as sock:
        r = wk.write_block_op(sock, new_block, dt.OpWriteBlockProto.PIPELINE_SETUP_APPEND,
                              min_bytes=1500)
        assert r.status == dt.SUCCESS
        req = nn.UpdatePipelineRequestProto(clientName="javaish", oldBlock=old,
                                            newBlock=new_block,
                                            storageIDs=[resp.block.storageIDs[0]])
        req.newNodes.add().CopyFrom(loc)
        admin.raw_call("updatePipeline", req, nn.UpdatePipelineResponseProto)
        wk.send_packet(sock, 1500, 0, extra[:36])          # fill the partial chunk to 1536
        wk.send_packet(sock, 1536, 1, extra[36:])
        wk.send_packet(sock, 4500, 2, b"", last=True)
        assert [wk.read_ack(sock).reply[0] for _ in range(3)] == [dt.SUCCESS] * 3
    new_block.numBytes = 4500
    req = nn.CompleteRequestProto(src="/japp/f", clientName="javaish")
    req.last.CopyFrom(new_block)
    assert admin.raw_call("complete", req, nn.CompleteResponseProto).result
    assert client.read_file("/japp/f") == base + extra
    lbs = _blocks(small, "/japp/f")
    assert lbs.blocks[0].b.generationStamp == upd.b.generationStamp
    admin.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_idle_writer_heartbeats_and_renews_its_lease(minidfs_factory) -> None:
    """An open writer idle for 35 s: hdfs-native sends a DataNode heartbeat packet and
    renewLease after ~30 s; the write then continues normally."""
    dfs = minidfs_factory(block_size=BS, lease_soft_limit=20.0)
    c = native_as(dfs.uri)
    w = c.create("/idle/f")
    w.write(b"a" * 1000)
    time.sleep(35)
    w.write(b"b" * 1000)
    w.close()
    with c.read("/idle/f") as r:
        assert r.read() == b"a" * 1000 + b"b" * 1000
    assert dfs.faults.calls.get("renewLease", 0) >= 1


def test_truncate_keeps_snapshots_intact(small, client) -> None:
    from hdfs_client.admin_rpc import AdminRpcClient

    data = os.urandom(2 * BS + 5000)
    client.write_file("/trunc/f", data)
    admin = AdminRpcClient(small.uri)
    admin.allow_snapshot("/trunc")
    admin.create_snapshot("/trunc", "before")

    def truncate(n: int) -> bool:
        return admin.raw_call("truncate", nn.TruncateRequestProto(src="/trunc/f", newLength=n,
                                                                  clientName="t"),
                              nn.TruncateResponseProto).result

    assert truncate(BS) is True                    # at a block boundary
    assert client.read_file("/trunc/f") == data[:BS]
    assert truncate(1000) is True                  # mid-block: copy-on-truncate
    assert client.read_file("/trunc/f") == data[:1000]
    assert client.get_status("/trunc/f").length == 1000
    assert client.read_file("/trunc/.snapshot/before/f") == data  # untouched
    with pytest.raises(errors.HdfsError):
        truncate(5000)                             # cannot grow
    with client.append("/trunc/f") as w:
        w.write(b"more")
    assert client.read_file("/trunc/f") == data[:1000] + b"more"
    admin.close()


def test_block_checksum_md5_of_crcs(small, client) -> None:
    """BLOCK_CHECKSUM (getFileChecksum): MD5 over the chunk CRCs, stable for equal data."""
    import hashlib

    data = os.urandom(BS + 700)
    client.write_file("/ck/a", data)
    client.write_file("/ck/b", data)
    sums = []
    for path in ("/ck/a", "/ck/b"):
        lbs = _blocks(small, path)
        per_block = []
        for blk in lbs.blocks:
            loc = blk.locs[0].id
            op = dt.OpBlockChecksumProto()
            op.header.block.CopyFrom(blk.b)
            with wk.connect(loc.ipAddr, loc.xferPort) as sock:
                wk.send_op(sock, 85, op)
                resp = wk.read_response(sock)
            assert resp.status == dt.SUCCESS
            cr = resp.checksumResponse
            assert cr.bytesPerCrc == 512 and cr.crcType == 2
            per_block.append(cr.blockChecksum)
        sums.append(per_block)
    assert sums[0] == sums[1]
    assert sums[0][1] == hashlib.md5(wk.crcs_for(data[BS:])).digest()


def test_writers_may_use_crc32_and_other_chunk_sizes(small, client) -> None:
    """Java with dfs.checksum.type=CRC32 / bytes-per-checksum=1024: verified with the
    writer's checksum, stored as CRC32C/512 (what readers then get)."""
    import struct as _struct
    import zlib

    from hdfs_csi_pb.hadoop import hdfs_pb2

    admin, lb = _raw_block(small, "/crc32/f")
    loc = lb.locs[0].id
    data = os.urandom(5000)
    sums = b"".join(_struct.pack(">I", zlib.crc32(data[i:i + 1024]))
                    for i in range(0, len(data), 1024))
    op = dt.OpWriteBlockProto(stage=dt.OpWriteBlockProto.PIPELINE_SETUP_CREATE, pipelineSize=1,
                              minBytesRcvd=0, maxBytesRcvd=0, latestGenerationStamp=0)
    op.header.baseHeader.block.CopyFrom(lb.b)
    op.header.clientName = "wirekit"
    op.requestedChecksum.type = hdfs_pb2.CHECKSUM_CRC32
    op.requestedChecksum.bytesPerChecksum = 1024
    with wk.connect(loc.ipAddr, loc.xferPort) as sock:
        wk.send_op(sock, 80, op)
        assert wk.read_response(sock).status == dt.SUCCESS
        wk.send_packet(sock, 0, 0, data, crcs=sums)
        wk.send_packet(sock, 5000, 1, b"", last=True)
        assert [wk.read_ack(sock).reply[0] for _ in range(2)] == [dt.SUCCESS, dt.SUCCESS]
    lb.b.numBytes = 5000
    req = nn.CompleteRequestProto(src="/crc32/f", clientName="wirekit")
    req.last.CopyFrom(lb.b)
    assert admin.raw_call("complete", req, nn.CompleteResponseProto).result
    assert client.read_file("/crc32/f") == data  # hdfs-native verifies the CRC32C it gets
    admin.close()
