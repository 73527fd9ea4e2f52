"""Hadoop RPC v9 framing, shared by minidfs (server) and our admin client.

Both sides of the project speak the same framing: a big-endian ``int32``
length, then varint-delimited protobuf messages.  Keeping the byte-level code
in one module means the server and the client cannot drift apart, and the
seam package (``hdfs_client``) never has to import the server to get it.

Everything here is transport-agnostic except :func:`recv_exact` and friends,
which read from a blocking socket *without over-reading*: the caller owns the
socket and the next byte after a frame belongs to the next frame.
"""

from __future__ import annotations

import socket
import struct

PREAMBLE_MAGIC = b"hrpc"
RPC_VERSION = 9
SERVICE_CLASS_DEFAULT = 0
AUTH_NONE = 0x00
AUTH_SASL = 0xDF  # -33 as a signed byte

CALL_ID_CONNECTION_CONTEXT = -3
CALL_ID_PING = -4
CALL_ID_SASL = -33

CLIENT_PROTOCOL = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
CLIENT_PROTOCOL_VERSION = 1

#: HdfsConstants.QUOTA_DONT_SET / QUOTA_RESET, as unsigned 64-bit wire values.
QUOTA_DONT_SET = 2**63 - 1
QUOTA_RESET = 2**64 - 1
UINT64_MAX = 2**64 - 1

#: Default upper bound for one frame; Hadoop's ipc.maximum.data.length is 64 MiB.
MAX_FRAME = 64 * 1024 * 1024

_INT32 = struct.Struct(">I")


class WireError(Exception):
    """The peer sent bytes that are not valid framing (or closed mid-frame)."""


class PeerClosed(WireError):
    """Clean EOF at a frame boundary: the normal way a connection ends."""


# -- varints --------------------------------------------------------------------

def encode_varint(value: int) -> bytes:
    """Unsigned LEB128; negative numbers are encoded as 64-bit two's complement."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """Return ``(value, new_pos)``; raise :class:`WireError` on truncation or > 10 bytes."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def delimited(payload: bytes) -> bytes:
    return encode_varint(len(payload)) + payload


def split_delimited(buf: bytes | memoryview, pos: int = 0) -> tuple[memoryview, int]:
    """Take one varint-delimited message out of ``buf``; return it and the next position."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    length, pos = decode_varint(view, pos)
    if length > len(view) - pos:
        raise WireError(f"delimited message of {length} bytes overruns its frame")
    return view[pos:pos + length], pos + length


# -- frames ---------------------------------------------------------------------

def build_frame(*messages: bytes) -> bytes:
    """One RPC frame: int32 length + each message varint-delimited."""
    body = b"".join(delimited(m) for m in messages)
    return _INT32.pack(len(body)) + body


def build_frame_raw(header: bytes, tail: bytes = b"") -> bytes:
    """Frame with a delimited ``header`` followed by already-delimited ``tail`` bytes."""
    body = delimited(header) + tail
    return _INT32.pack(len(body)) + body


def preamble(auth: int = AUTH_NONE) -> bytes:
    return PREAMBLE_MAGIC + bytes([RPC_VERSION, SERVICE_CLASS_DEFAULT, auth])


# -- blocking socket reads ------------------------------------------------------

def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes. EOF before the first byte raises :class:`PeerClosed`."""
    if n == 0:
        return b""
    buf = bytearray(n)
    recv_into_exact(sock, memoryview(buf))
    return bytes(buf)


def recv_into_exact(sock: socket.socket, view: memoryview) -> None:
    """Fill ``view`` completely from ``sock`` (no intermediate copies)."""
    got = 0
    n = len(view)
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            if got == 0:
                raise PeerClosed("connection closed")
            raise WireError(f"connection closed after {got} of {n} bytes")
        got += r


def recv_varint(sock: socket.socket) -> int:
    """Read a varint byte by byte, so that nothing after it is consumed."""
    result = 0
    shift = 0
    first = True
    while True:
        b = sock.recv(1)
        if not b:
            if first:
                raise PeerClosed("connection closed")
            raise WireError("connection closed inside a varint")
        first = False
        byte = b[0]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def recv_delimited(sock: socket.socket, max_len: int) -> bytes:
    length = recv_varint(sock)
    if length > max_len:
        raise WireError(f"delimited message of {length} bytes exceeds limit {max_len}")
    return recv_exact(sock, length)


def recv_frame(sock: socket.socket, max_len: int = MAX_FRAME) -> bytes:
    """Read one length-prefixed frame; absurd lengths are rejected before allocating."""
    (length,) = _INT32.unpack(recv_exact(sock, 4))
    if length > max_len:
        raise WireError(f"frame of {length} bytes exceeds limit {max_len}")
    if length == 0:
        raise WireError("empty frame")
    return recv_exact(sock, length)
