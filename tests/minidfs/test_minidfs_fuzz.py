"""Bad input on both ports: the connection is closed with an error, the server stays up,
well-behaved clients keep working, and nothing already stored is lost."""

from __future__ import annotations

import os
import socket
import struct
import uuid

import wire_kit as wk
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdfs_client import connect
from hadoop_wire import rpc_framing as w
from hdfs_csi_pb.hadoop import datatransfer_pb2 as dt
from hdfs_csi_pb.hadoop import namenode_pb2 as nn
from hdfs_csi_pb.hadoop import rpc_pb2

pytestmark = pytest.mark.timeout(300)

# modest by default; MINIDFS_FUZZ_EXAMPLES=500 for a deeper run
FUZZ = settings(max_examples=int(os.environ.get("MINIDFS_FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def dfs(tmp_path_factory):
    from minidfs import MiniDFS

    with MiniDFS(tmp_path_factory.mktemp("fuzz"), block_size=64 * 1024) as d:
        yield d


@pytest.fixture(scope="module")
def stored(dfs):
    payload = os.urandom(200_000)
    with connect(dfs.uri) as c:
        c.write_file("/precious", payload)
    return payload


@pytest.fixture(scope="module")
def good(dfs):
    with connect(dfs.uri) as c:
        yield c


def _closed_within(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Read until the server closes; fail if it keeps the connection open."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
    except ConnectionResetError:
        return got
    except TimeoutError:
        pytest.fail(f"server kept the connection open after bad input (got {got[:60]!r})")


def _send_and_eof(sock: socket.socket, data: bytes) -> None:
    """Send, then half-close; the server may already have hung up, which is fine."""
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _healthy(good, stored) -> None:
    assert good.read_file("/precious") == stored
    good.mkdirs("/still-alive")


def _fatal_in(data: bytes) -> bool:
    """Does the byte stream contain a FATAL RpcResponseHeader frame?"""
    pos = 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        frame = data[pos + 4:pos + 4 + n]
        try:
            hdr_bytes, _ = w.split_delimited(frame, 0)
            hdr = rpc_pb2.RpcResponseHeaderProto.FromString(bytes(hdr_bytes))
            if hdr.status == rpc_pb2.RpcResponseHeaderProto.FATAL:
                return True
        except Exception:  # noqa: BLE001
            return False
        pos += 4 + n
    return False


def _nn_session(dfs) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", dfs.port), timeout=10)
    header = rpc_pb2.RpcRequestHeaderProto(rpcKind=rpc_pb2.RPC_PROTOCOL_BUFFER, rpcOp=0,
                                           callId=-3, clientId=uuid.uuid4().bytes,
                                           retryCount=-1)
    ctx = rpc_pb2.IpcConnectionContextProto(protocol=w.CLIENT_PROTOCOL)
    ctx.userInfo.effectiveUser = "fuzzer"
    sock.sendall(w.preamble() + w.build_frame(header.SerializeToString(),
                                              ctx.SerializeToString()))
    return sock


def _call_frame(method: str, body: bytes, call_id: int = 0) -> bytes:
    header = rpc_pb2.RpcRequestHeaderProto(rpcKind=rpc_pb2.RPC_PROTOCOL_BUFFER, rpcOp=0,
                                           callId=call_id, clientId=b"x" * 16, retryCount=0)
    rh = rpc_pb2.RequestHeaderProto(methodName=method,
                                    declaringClassProtocolName=w.CLIENT_PROTOCOL,
                                    clientProtocolVersion=1)
    return w.build_frame(header.SerializeToString(), rh.SerializeToString()) if body is None \
        else w.build_frame(header.SerializeToString(), rh.SerializeToString(), body)


# -- NameNode port -------------------------------------------------------------------
@FUZZ
@given(junk=st.one_of(st.binary(max_size=400),
                      st.binary(max_size=200).map(lambda b: w.preamble() + b),
                      st.binary(max_size=200).map(lambda b: b"hrpc\x09\x00\xdf" + b)))
def test_namenode_random_bytes(dfs, good, stored, junk: bytes) -> None:
    with socket.create_connection(("127.0.0.1", dfs.port), timeout=10) as sock:
        _send_and_eof(sock, junk)  # truncated input: EOF in the middle of whatever it was
        _closed_within(sock)
    _healthy(good, stored)


@FUZZ
@given(length=st.integers(w.MAX_FRAME + 1, 2**32 - 1))
def test_namenode_absurd_frame_length(dfs, good, stored, length: int) -> None:
    with _nn_session(dfs) as sock:
        sock.sendall(struct.pack(">I", length))  # no payload follows: must not wait for it
        assert _fatal_in(_closed_within(sock))
    _healthy(good, stored)


@FUZZ
@given(payload=st.binary(min_size=1, max_size=300))
def test_namenode_garbage_frames(dfs, good, stored, payload: bytes) -> None:
    with _nn_session(dfs) as sock:
        _send_and_eof(sock, struct.pack(">I", len(payload)) + payload)
        _closed_within(sock)
    _healthy(good, stored)


@FUZZ
@given(method=st.sampled_from(["getFileInfo", "create", "delete", "rename2", "setQuota",
                               "getListing", "addBlock", "complete", "mkdirs"]),
       body=st.binary(max_size=120))
def test_namenode_malformed_requests(dfs, good, stored, method: str, body: bytes) -> None:
    """Unparseable or incomplete requests close the connection with FATAL; ones that happen
    to parse are answered normally and the connection stays usable."""
    with _nn_session(dfs) as sock:
        sock.sendall(_call_frame(method, body, call_id=7))
        sock.settimeout(10)
        (n,) = struct.unpack(">I", w.recv_exact(sock, 4))
        frame = w.recv_exact(sock, n)
        hdr_bytes, _ = w.split_delimited(frame, 0)
        hdr = rpc_pb2.RpcResponseHeaderProto.FromString(bytes(hdr_bytes))
        if hdr.status == rpc_pb2.RpcResponseHeaderProto.FATAL:
            _closed_within(sock)
        else:
            assert hdr.callId == 7
            # still usable: a second, valid call on the same connection
            sock.sendall(_call_frame("getFileInfo",
                                     nn.GetFileInfoRequestProto(src="/").SerializeToString(), 8))
            (n,) = struct.unpack(">I", w.recv_exact(sock, 4))
            hdr_bytes, _ = w.split_delimited(w.recv_exact(sock, n), 0)
            assert rpc_pb2.RpcResponseHeaderProto.FromString(bytes(hdr_bytes)).callId == 8
    _healthy(good, stored)


def test_namenode_call_before_context_and_bad_version(dfs, good, stored) -> None:
    with socket.create_connection(("127.0.0.1", dfs.port), timeout=10) as sock:
        sock.sendall(w.preamble() + _call_frame("getFileInfo", b"\n\x01/"))
        assert _fatal_in(_closed_within(sock))
    with socket.create_connection(("127.0.0.1", dfs.port), timeout=10) as sock:
        sock.sendall(b"hrpc\x07\x00\x00")
        _closed_within(sock)
    _healthy(good, stored)


# -- DataNode port -------------------------------------------------------------------
def _dn(dfs) -> tuple[str, int]:
    return "127.0.0.1", dfs.datanodes[0].port


@FUZZ
@given(junk=st.one_of(st.binary(max_size=400),
                      st.binary(max_size=300).map(lambda b: b"\x00\x1c\x51" + b),
                      st.binary(max_size=300).map(lambda b: b"\x00\x1c\x50" + b)))
def test_datanode_random_bytes(dfs, good, stored, junk: bytes) -> None:
    with socket.create_connection(_dn(dfs), timeout=10) as sock:
        _send_and_eof(sock, junk)
        _closed_within(sock)
    _healthy(good, stored)


@FUZZ
@given(length=st.integers(2**21, 2**63), op=st.sampled_from([80, 81, 85, 86]))
def test_datanode_absurd_op_length(dfs, good, stored, length: int, op: int) -> None:
    with socket.create_connection(_dn(dfs), timeout=10) as sock:
        sock.sendall(struct.pack(">HB", 28, op) + w.encode_varint(length))
        _closed_within(sock)
    _healthy(good, stored)


@FUZZ
@given(prefix=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1)),
       tail=st.binary(max_size=64))
def test_datanode_garbage_packets_during_write(dfs, good, stored, prefix, tail) -> None:
    """A write that starts properly and then sends nonsense packets is cut off; the
    half-written replica never becomes part of a file."""
    from hdfs_client.admin_rpc import AdminRpcClient

    with AdminRpcClient(dfs.uri) as admin:
        name = f"/fuzzw/{uuid.uuid4().hex}"
        req = nn.CreateRequestProto(src=name, clientName="fuzz", createFlag=1,
                                    createParent=True, replication=1, blockSize=64 * 1024)
        req.masked.perm = 0o644
        admin.raw_call("create", req, nn.CreateResponseProto)
        lb = admin.raw_call("addBlock", nn.AddBlockRequestProto(src=name, clientName="fuzz"),
                            nn.AddBlockResponseProto).block
        with wk.connect(*_dn(dfs)) as sock:
            resp = wk.write_block_op(sock, lb.b, dt.OpWriteBlockProto.PIPELINE_SETUP_CREATE)
            assert resp.status == dt.SUCCESS
            _send_and_eof(sock, struct.pack(">IH", *prefix) + tail)
            _closed_within(sock)
        assert good.get_status(name).length == 0
    _healthy(good, stored)


def test_datanode_unknown_op_and_version(dfs, good, stored) -> None:
    with socket.create_connection(_dn(dfs), timeout=10) as sock:
        sock.sendall(struct.pack(">HB", 28, 99) + b"\x00")
        data = _closed_within(sock)
        resp, _ = w.split_delimited(data, 0)
        assert dt.BlockOpResponseProto.FromString(bytes(resp)).status == dt.ERROR_UNSUPPORTED
    with socket.create_connection(_dn(dfs), timeout=10) as sock:
        sock.sendall(struct.pack(">HB", 27, 81) + b"\x00")
        _closed_within(sock)
    _healthy(good, stored)
