"""A logging TCP proxy for the NameNode RPC port (debugging aid, not a test).

Why: when the Java client rejects a minidfs answer, the quickest diagnosis
is the exact call sequence and which response carried which status or
exception.  The proxy forwards bytes untouched and decodes only the Hadoop
RPC framing (doc §1-§2) to print one line per call and per response::

    python tests/minidfs_java/rpcspy_kit.py 127.0.0.1:9000 --listen 9100
    python tests/minidfs_java/java_kit.py --start --spy      # same, wired up for you
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from typing import Callable, TextIO

from google.protobuf.internal.decoder import _DecodeVarint32  # type: ignore[attr-defined]

from hdfs_csi_pb.hadoop import rpc_pb2

Logger = Callable[[str], None]


def _delimited(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _DecodeVarint32(buf, pos)
    return buf[pos:pos + n], pos + n


class _Stream:
    """Reassembles length-prefixed frames from forwarded chunks."""

    def __init__(self, preamble: int) -> None:
        self.buf = bytearray()
        self.skip = preamble

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        if self.skip:
            take = min(self.skip, len(self.buf))
            del self.buf[:take]
            self.skip -= take
        frames = []
        while len(self.buf) >= 4:
            n = int.from_bytes(self.buf[:4], "big")
            if len(self.buf) < 4 + n:
                break
            frames.append(bytes(self.buf[4:4 + n]))
            del self.buf[:4 + n]
        return frames


def describe_request(frame: bytes) -> str:
    hdr_b, pos = _delimited(frame, 0)
    hdr = rpc_pb2.RpcRequestHeaderProto.FromString(hdr_b)
    if hdr.callId < 0:
        kind = {-3: "connection-context", -4: "ping", -33: "sasl"}.get(hdr.callId, "?")
        return f"-> call {hdr.callId} {kind} ({len(frame)} B)"
    req_b, pos = _delimited(frame, pos)
    req = rpc_pb2.RequestHeaderProto.FromString(req_b)
    body, _ = _delimited(frame, pos)
    return f"-> call {hdr.callId} {req.methodName} body={body.hex()[:160]}"


def describe_response(frame: bytes) -> str:
    hdr_b, pos = _delimited(frame, 0)
    hdr = rpc_pb2.RpcResponseHeaderProto.FromString(hdr_b)
    cid = hdr.callId - (1 << 32) if hdr.callId >= 1 << 31 else hdr.callId
    status = rpc_pb2.RpcResponseHeaderProto.RpcStatusProto.Name(hdr.status)
    if hdr.status != 0:
        return (f"<- call {cid} {status} {hdr.exceptionClassName}: {hdr.errorMsg[:300]} "
                f"(detail {hdr.errorDetail})")
    rest = len(frame) - pos
    body = b""
    if rest:
        body, end = _delimited(frame, pos)
        if end != len(frame):
            extra = len(frame) - end
            return f"<- call {cid} SUCCESS !! {extra} trailing bytes (Java: length mismatch)"
    return f"<- call {cid} SUCCESS body={body.hex()[:160]}"


class RpcSpy:
    """Accepts on ``listen_port`` and forwards every connection to ``target``."""

    def __init__(self, target: tuple[str, int], listen_port: int = 0,
                 log: Logger | None = None) -> None:
        self.target = target
        self.log: Logger = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.sock = socket.create_server(("127.0.0.1", listen_port))
        self.port = self.sock.getsockname()[1]
        self._conn_no = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, name="rpcspy_kit", daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self._conn_no += 1
            try:
                upstream = socket.create_connection(self.target)
            except OSError as e:
                self.log(f"[c{self._conn_no}] cannot reach {self.target}: {e}")
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tag = f"[c{self._conn_no}]"
            threading.Thread(target=self._pump, daemon=True,
                             args=(client, upstream, _Stream(7), describe_request, tag)).start()
            threading.Thread(target=self._pump, daemon=True,
                             args=(upstream, client, _Stream(0), describe_response, tag)).start()

    def _pump(self, src: socket.socket, dst: socket.socket, stream: _Stream,
              describe: Callable[[bytes], str], tag: str) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                for frame in stream.feed(data):
                    try:
                        self.log(f"{tag} {describe(frame)}")
                    except Exception as e:  # a decode problem must not break the proxy
                        self.log(f"{tag} undecodable frame ({e}): {frame[:64].hex()}")
        except OSError:
            pass
        finally:
            side = "client" if describe is describe_request else "server"
            self.log(f"{tag} {side} closed")
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("target", help="NameNode host:port")
    ap.add_argument("--listen", type=int, default=0)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    out: TextIO = sys.stderr
    spy = RpcSpy((host, int(port)), a.listen, lambda line: print(line, file=out, flush=True))
    print(f"listening on 127.0.0.1:{spy.port} -> {a.target}", file=out, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        spy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
