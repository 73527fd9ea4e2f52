"""DataTransferProtocol byte layout: packet headers, pipeline acks, op framing.

The DataNode's hot loops encode and decode these per 64 KiB packet, so the
two fixed-shape messages (PacketHeaderProto, PipelineAckProto) are built
with ``struct`` instead of protobuf objects; the protobuf classes are still
the reference and the fallback for any header shape we do not expect.

Gotcha kept in one place: PacketHeaderProto's sfixed fields are
*little-endian* inside the proto while the packet's own length prefixes are
*big-endian*.
"""

from __future__ import annotations

import socket
import struct

from google.protobuf.message import DecodeError

from hadoop_wire.rpc_framing import WireError, encode_varint
from hdfs_csi_pb.hadoop import datatransfer_pb2

DATA_TRANSFER_VERSION = 28
OP_WRITE_BLOCK = 80
OP_READ_BLOCK = 81
OP_READ_METADATA = 82
OP_REPLACE_BLOCK = 83
OP_COPY_BLOCK = 84
OP_BLOCK_CHECKSUM = 85
OP_TRANSFER_BLOCK = 86
OP_NAMES = {OP_WRITE_BLOCK: "WRITE_BLOCK", OP_READ_BLOCK: "READ_BLOCK",
            OP_READ_METADATA: "READ_METADATA", OP_REPLACE_BLOCK: "REPLACE_BLOCK",
            OP_COPY_BLOCK: "COPY_BLOCK", OP_BLOCK_CHECKSUM: "BLOCK_CHECKSUM",
            OP_TRANSFER_BLOCK: "TRANSFER_BLOCK"}

MAX_PACKET_DATA = 16 * 1024 * 1024   # Java's PacketReceiver limit
MAX_HEADER_LEN = 1024
MAX_OP_PROTO = 1024 * 1024

_PREFIX = struct.Struct(">IH")
# tags: 0x09 offsetInBlock sfixed64, 0x11 seqno sfixed64, 0x18 last bool, 0x25 dataLen sfixed32
_HEADER = struct.Struct("<BqBqBBBi")
_HEADER_SYNC = struct.Struct("<BqBqBBBiBB")
HEADER_LEN = _HEADER.size        # 25
HEADER_SYNC_LEN = _HEADER_SYNC.size  # 27


def packet_prefix(offset: int, seqno: int, last: bool, data_len: int, checksum_len: int,
                  sync: bool = False) -> bytes:
    """The 6-byte length prefix plus the encoded PacketHeaderProto."""
    if sync:
        header = _HEADER_SYNC.pack(0x09, offset, 0x11, seqno, 0x18, 1 if last else 0, 0x25,
                                   data_len, 0x28, 1)
    else:
        header = _HEADER.pack(0x09, offset, 0x11, seqno, 0x18, 1 if last else 0, 0x25,
                              data_len)
    return _PREFIX.pack(4 + checksum_len + data_len, len(header)) + header


def parse_prefix(prefix: bytes) -> tuple[int, int]:
    """Return (payload_len, header_len) after validating them against sane limits."""
    payload_len, header_len = _PREFIX.unpack(prefix)
    if header_len == 0 or header_len > MAX_HEADER_LEN:
        raise WireError(f"packet header length {header_len} out of range")
    if payload_len < 4 or payload_len - 4 > MAX_PACKET_DATA + MAX_PACKET_DATA // 128 + 4:
        raise WireError(f"packet payload length {payload_len} out of range")
    return payload_len, header_len


def parse_header(buf: bytes | memoryview) -> tuple[int, int, bool, int, bool]:
    """(offsetInBlock, seqno, lastPacketInBlock, dataLen, syncBlock)."""
    n = len(buf)
    if n == HEADER_LEN and buf[0] == 0x09 and buf[9] == 0x11 and buf[18] == 0x18 \
            and buf[20] == 0x25:
        _, off, _, seq, _, last, _, dlen = _HEADER.unpack(buf)
        return off, seq, bool(last), dlen, False
    if n == HEADER_SYNC_LEN and buf[0] == 0x09 and buf[9] == 0x11 and buf[18] == 0x18 \
            and buf[20] == 0x25 and buf[25] == 0x28:
        _, off, _, seq, _, last, _, dlen, _, sync = _HEADER_SYNC.unpack(buf)
        return off, seq, bool(last), dlen, bool(sync)
    msg = datatransfer_pb2.PacketHeaderProto()
    try:
        msg.ParseFromString(bytes(buf))
    except DecodeError as exc:
        raise WireError(f"bad packet header: {exc}") from None
    if not msg.IsInitialized():
        raise WireError("packet header misses required fields")
    return msg.offsetInBlock, msg.seqno, msg.lastPacketInBlock, msg.dataLen, msg.syncBlock


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def pipeline_ack(seqno: int, replies: list[int]) -> bytes:
    """Delimited PipelineAckProto with one reply (and one flag) per pipeline node."""
    body = b"\x08" + encode_varint(_zigzag(seqno))
    for r in replies:
        body += b"\x10" + encode_varint(r)
    body += b"\x22" + encode_varint(len(replies)) + b"".join(
        encode_varint(r & 0x0F) for r in replies)
    return encode_varint(len(body)) + body


def sendmsg_all(sock: socket.socket, buffers: list[bytes | memoryview]) -> None:
    """``sendmsg`` that copes with partial sends (rare on blocking sockets)."""
    total = 0
    for b in buffers:
        total += len(b)
    sent = sock.sendmsg(buffers)
    if sent == total:
        return
    rest = b"".join(bytes(b) for b in buffers)[sent:]
    sock.sendall(rest)
