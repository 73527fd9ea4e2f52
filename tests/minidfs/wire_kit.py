"""A tiny hand-rolled DataTransferProtocol / RPC client for tests that need to
put exact bytes on the wire: overlapping packets, wrong CRCs, garbage."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any

import crc32c

from hadoop_wire.rpc_framing import delimited, recv_delimited, recv_exact
from hdfs_csi_pb.hadoop import datatransfer_pb2 as dt
from hdfs_csi_pb.hadoop import hdfs_pb2
from hdfs_csi_pb.hadoop import namenode_pb2 as nn


@dataclass
class Packet:
    offset: int
    seqno: int
    last: bool
    data: bytes
    crcs: bytes


def located_blocks(admin: Any, path: str, offset: int = 0,
                   length: int = 2**63 - 1) -> hdfs_pb2.LocatedBlocksProto:
    resp = admin.raw_call("getBlockLocations",
                          nn.GetBlockLocationsRequestProto(src=path, offset=offset,
                                                           length=length),
                          nn.GetBlockLocationsResponseProto)
    return resp.locations


def connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _header(block: hdfs_pb2.ExtendedBlockProto) -> dt.ClientOperationHeaderProto:
    h = dt.ClientOperationHeaderProto(clientName="wirekit")
    h.baseHeader.block.CopyFrom(block)
    return h


def send_op(sock: socket.socket, op: int, msg: Any) -> None:
    sock.sendall(struct.pack(">HB", 28, op) + delimited(msg.SerializeToString()))


def read_response(sock: socket.socket) -> dt.BlockOpResponseProto:
    resp = dt.BlockOpResponseProto()
    resp.ParseFromString(recv_delimited(sock, 1 << 20))
    return resp


def read_block(sock: socket.socket, block: hdfs_pb2.ExtendedBlockProto, offset: int,
               length: int, checksums: bool = True) -> tuple[dt.BlockOpResponseProto,
                                                             list[Packet]]:
    op = dt.OpReadBlockProto(offset=offset, len=length, sendChecksums=checksums)
    op.header.CopyFrom(_header(block))
    send_op(sock, 81, op)
    resp = read_response(sock)
    packets: list[Packet] = []
    if resp.status != dt.SUCCESS:
        return resp, packets
    while True:
        plen, hlen = struct.unpack(">IH", recv_exact(sock, 6))
        hdr = dt.PacketHeaderProto()
        hdr.ParseFromString(recv_exact(sock, hlen))
        body = recv_exact(sock, plen - 4)
        nck = len(body) - hdr.dataLen
        packets.append(Packet(hdr.offsetInBlock, hdr.seqno, hdr.lastPacketInBlock,
                              body[nck:], body[:nck]))
        if hdr.lastPacketInBlock:
            break
    sock.sendall(delimited(dt.ClientReadStatusProto(status=dt.CHECKSUM_OK).SerializeToString()))
    return resp, packets


def write_block_op(sock: socket.socket, block: hdfs_pb2.ExtendedBlockProto, stage: int,
                   min_bytes: int = 0, crc_type: int = hdfs_pb2.CHECKSUM_CRC32C,
                   targets: list[Any] = ()) -> dt.BlockOpResponseProto:  # type: ignore[assignment]
    op = dt.OpWriteBlockProto(stage=stage, pipelineSize=1 + len(targets),
                              minBytesRcvd=min_bytes, maxBytesRcvd=min_bytes,
                              latestGenerationStamp=block.generationStamp)
    op.header.CopyFrom(_header(block))
    op.targets.extend(targets)
    op.requestedChecksum.type = crc_type
    op.requestedChecksum.bytesPerChecksum = 512
    send_op(sock, 80, op)
    return read_response(sock)


def crcs_for(data: bytes) -> bytes:
    return b"".join(struct.pack(">I", crc32c.crc32c(data[i:i + 512]))
                    for i in range(0, len(data), 512))


def send_packet(sock: socket.socket, offset: int, seqno: int, data: bytes, *,
                last: bool = False, sync: bool = False, crcs: bytes | None = None) -> None:
    hdr = dt.PacketHeaderProto(offsetInBlock=offset, seqno=seqno, lastPacketInBlock=last,
                               dataLen=len(data), syncBlock=sync).SerializeToString()
    sums = crcs_for(data) if crcs is None else crcs
    sock.sendall(struct.pack(">IH", 4 + len(sums) + len(data), len(hdr)) + hdr + sums + data)


def read_ack(sock: socket.socket) -> dt.PipelineAckProto:
    ack = dt.PipelineAckProto()
    ack.ParseFromString(recv_delimited(sock, 1024))
    return ack
