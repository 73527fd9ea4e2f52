"""Hadoop RPC v9 server: connection handshake, framing, dispatch, errors.

One thread reads each connection; calls are handed to a worker pool so a
slow call (injected latency, a big listing) does not hold up the others on
the same connection - hdfs-native multiplexes many calls over one socket and
matches responses by call id, in any order.

Failure policy, which the fuzz tests pin down:

* a call that fails for a *reason* (missing file, permission, ...) gets an
  ERROR response and the connection stays usable;
* anything that breaks the *protocol* (bad preamble, absurd length, a header
  or request that does not parse) gets a FATAL response if possible and the
  connection is closed.  The server itself is never affected.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from hadoop_wire import rpc_framing as w
from hdfs_csi_pb.hadoop import rpc_pb2
from minidfs import errors
from minidfs.faults import Faults
from minidfs.listener import Listener, parse_message

log = logging.getLogger(__name__)

RespHeader = rpc_pb2.RpcResponseHeaderProto


class MalformedRequest(Exception):
    """The request body does not parse: a protocol error that closes the connection."""


@dataclass
class CallContext:
    user: str
    real_user: str | None
    remote: str


Dispatcher = Callable[[CallContext, str, bytes], bytes]


class _Connection:
    def __init__(self, sock: socket.socket, remote: str):
        self.sock = sock
        self.remote = remote
        self.send_lock = threading.Lock()
        self.closed = False
        self.context: CallContext | None = None

    def send(self, data: bytes) -> None:
        with self.send_lock:
            if self.closed:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def close(self) -> None:
        with self.send_lock:
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class RpcServer:
    def __init__(self, dispatcher: Dispatcher, *, host: str = "127.0.0.1", port: int = 0,
                 faults: Faults | None = None, workers: int = 16,
                 max_frame: int = w.MAX_FRAME, frame_timeout: float = 60.0,
                 name: str = "namenode"):
        self.dispatcher = dispatcher
        self.host = host
        self.port = port
        self.faults = faults or Faults()
        self.max_frame = max_frame
        #: a peer that stops sending in the middle of a frame is dropped after this long;
        #: an idle connection (between frames) is kept forever, like a real NameNode does
        #: with few clients - hdfs-native holds one connection for the life of a mount
        self.frame_timeout = frame_timeout
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-handler")
        self._listener = Listener(host, port, self._accept, name)
        self._conns: set[_Connection] = set()
        self._conns_lock = threading.Lock()
        self.running = False

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        self.port = self._listener.open()

    def stop(self) -> None:
        self.running = False
        self._listener.close()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            c.close()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _accept(self, sock: socket.socket, addr: tuple) -> None:
        conn = _Connection(sock, f"{addr[0]}:{addr[1]}")
        with self._conns_lock:
            self._conns.add(conn)
        self._serve(conn)

    # -- one connection --------------------------------------------------------------
    def _serve(self, conn: _Connection) -> None:
        sock = conn.sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.frame_timeout)
        try:
            pre = w.recv_exact(sock, 7)
            if pre[:4] != w.PREAMBLE_MAGIC or pre[4] != w.RPC_VERSION:
                raise w.WireError(f"bad RPC preamble {pre!r}")
            if pre[6] == w.AUTH_SASL:
                self._sasl_handshake(conn)
            elif pre[6] != w.AUTH_NONE:
                raise w.WireError(f"unsupported auth protocol {pre[6]}")
            while self.running:
                sock.settimeout(None)  # idle between calls: wait as long as the client likes
                head = w.recv_exact(sock, 4)
                sock.settimeout(self.frame_timeout)
                (length,) = struct.unpack(">I", head)
                if length == 0 or length > self.max_frame:
                    raise w.WireError(f"frame length {length} out of range (max "
                                      f"{self.max_frame})")
                self._handle_frame(conn, w.recv_exact(sock, length))
        except w.PeerClosed:
            pass
        except (w.WireError, DecodeError, MalformedRequest) as exc:
            log.info("%s: protocol error from %s: %s", self.name, conn.remote, exc)
            self._send_fatal(conn, str(exc))
        except TimeoutError:
            log.info("%s: %s stalled in the middle of a frame; dropped", self.name, conn.remote)
        except OSError as exc:
            if self.running and exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.EBADF):
                log.info("%s: connection error from %s: %s", self.name, conn.remote, exc)
        except Exception:
            log.exception("%s: unexpected error on connection from %s", self.name, conn.remote)
            self._send_fatal(conn, "internal error")
        finally:
            conn.close()
            with self._conns_lock:
                self._conns.discard(conn)

    def _sasl_handshake(self, conn: _Connection) -> None:
        """Answer a SASL NEGOTIATE with SUCCESS: "proceed with SIMPLE auth"."""
        payload = w.recv_frame(conn.sock, 1 << 20)
        hdr_bytes, _ = w.split_delimited(payload, 0)
        header = _parse(rpc_pb2.RpcRequestHeaderProto, hdr_bytes)
        if header.callId != w.CALL_ID_SASL:
            raise w.WireError(f"expected a SASL frame, got call id {header.callId}")
        self._send_sasl_success(conn)

    @staticmethod
    def _send_sasl_success(conn: _Connection) -> None:
        """SUCCESS to a SASL NEGOTIATE: "proceed with SIMPLE auth"."""
        resp = RespHeader(callId=w.CALL_ID_SASL & 0xFFFFFFFF, status=RespHeader.SUCCESS)
        sasl = rpc_pb2.RpcSaslProto(state=rpc_pb2.RpcSaslProto.SUCCESS)
        conn.send(w.build_frame(resp.SerializeToString(), sasl.SerializeToString()))

    def _handle_frame(self, conn: _Connection, payload: bytes) -> None:
        hdr_bytes, pos = w.split_delimited(payload, 0)
        header = _parse(rpc_pb2.RpcRequestHeaderProto, hdr_bytes)
        call_id = header.callId
        if call_id == w.CALL_ID_CONNECTION_CONTEXT:
            body, _ = w.split_delimited(payload, pos)
            ctx = _parse(rpc_pb2.IpcConnectionContextProto, body)
            user = ctx.userInfo.effectiveUser if ctx.HasField("userInfo") else ""
            if not user:
                raise MalformedRequest("connection context without effectiveUser")
            real = ctx.userInfo.realUser if ctx.userInfo.HasField("realUser") else None
            conn.context = CallContext(user, real, conn.remote)
            return
        if call_id == w.CALL_ID_PING:
            return
        if call_id == w.CALL_ID_SASL:
            self._send_sasl_success(conn)
            return
        if call_id < 0:
            raise w.WireError(f"unexpected out-of-band call id {call_id}")
        if conn.context is None:
            raise w.WireError("call before connection context")
        if header.rpcOp == rpc_pb2.RpcRequestHeaderProto.RPC_CLOSE_CONNECTION:
            raise w.PeerClosed("client closed the connection")
        rh_bytes, pos = w.split_delimited(payload, pos)
        req_header = _parse(rpc_pb2.RequestHeaderProto, rh_bytes)
        if pos < len(payload):
            body, pos = w.split_delimited(payload, pos)
            body_bytes = bytes(body)
        else:
            body_bytes = b""
        if pos != len(payload):
            raise w.WireError(f"{len(payload) - pos} trailing bytes after the request")
        try:
            self._pool.submit(self._call, conn, header, req_header.methodName, body_bytes)
        except RuntimeError:  # shutting down: the pool takes no more work
            raise w.PeerClosed("server stopping") from None

    def _call(self, conn: _Connection, header: rpc_pb2.RpcRequestHeaderProto, method: str,
              body: bytes) -> None:
        ctx = conn.context
        assert ctx is not None
        resp = RespHeader(callId=header.callId & 0xFFFFFFFF, status=RespHeader.SUCCESS,
                          serverIpcVersionNum=w.RPC_VERSION, clientId=header.clientId,
                          retryCount=header.retryCount)
        try:
            faults = self.faults
            if faults.rpc_latency:
                time.sleep(faults.rpc_latency)
            failure = faults.take_failure(method)
            if failure is not None:
                raise errors.RemoteError(failure[1], java_class=failure[0])
            result = self.dispatcher(ctx, method, body)
            conn.send(w.build_frame(resp.SerializeToString(), result))
            return
        except MalformedRequest as exc:
            log.info("%s: malformed %s request from %s: %s", self.name, method, conn.remote, exc)
            self._send_fatal(conn, str(exc), call_id=header.callId,
                             code=RespHeader.FATAL_DESERIALIZING_REQUEST)
            conn.close()
            return
        except errors.NoSuchMethod as exc:
            resp.status = RespHeader.ERROR
            resp.errorDetail = RespHeader.ERROR_NO_SUCH_METHOD
            resp.exceptionClassName = exc.java_class
            resp.errorMsg = str(exc)
        except errors.RemoteError as exc:
            resp.status = RespHeader.ERROR
            resp.errorDetail = RespHeader.ERROR_APPLICATION
            resp.exceptionClassName = exc.java_class
            resp.errorMsg = str(exc)
            log.debug("%s(%s) -> %s: %s", method, ctx.user, exc.java_class, exc)
        except Exception as exc:
            log.exception("%s: %s failed", self.name, method)
            resp.status = RespHeader.ERROR
            resp.errorDetail = RespHeader.ERROR_APPLICATION
            resp.exceptionClassName = "java.io.IOException"
            resp.errorMsg = f"minidfs internal error in {method}: {exc!r}"
        conn.send(w.build_frame(resp.SerializeToString()))

    def _send_fatal(self, conn: _Connection, message: str, call_id: int = -1,
                    code: int = RespHeader.FATAL_INVALID_RPC_HEADER) -> None:
        resp = RespHeader(callId=call_id & 0xFFFFFFFF, status=RespHeader.FATAL,
                          serverIpcVersionNum=w.RPC_VERSION,
                          exceptionClassName="org.apache.hadoop.ipc.RpcServerException",
                          errorMsg=message[:1000], errorDetail=code)
        conn.send(w.build_frame(resp.SerializeToString()))


def _parse(cls: type, data: bytes | memoryview) -> object:
    return parse_message(cls, data, MalformedRequest)


def parse_request(cls: type, data: bytes) -> object:
    """Parse a request message for a handler; malformed input closes the connection."""
    return _parse(cls, data)
