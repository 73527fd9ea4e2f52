"""ClientDatanodeProtocol on a DataNode's ``ipcPort``: how Java readers size an open file.

Why it exists: like HDFS, the NameNode leaves the last block of a file under
construction out of ``LocatedBlocks.fileLength`` and says
``isLastBlockComplete=false``.  Hadoop's ``DFSInputStream`` then asks one of
that block's DataNodes how many bytes of its replica are visible
(``getReplicaVisibleLength``: the bytes acknowledged to the writer) and reads
up to there, so a Java reader sees what a writer has hflushed.  hdfs-native
never asks, and reads up to ``fileLength``, the completed blocks only: both
as on HDFS.

Same Hadoop RPC v9 framing as the NameNode (:class:`minidfs.ipc.RpcServer`).
Java connects with a block token in its UGI, so it opens with a SASL
NEGOTIATE; the server's SIMPLE answer is the one a non-secure DataNode gives.
Only ``getReplicaVisibleLength`` is served; other methods (``getBlockLocalPathInfo``,
``refreshNamenodes``, ...) answer ``RpcNoSuchMethodException``.  The two tiny
messages are encoded here by hand so the generated protobuf set needs no
ClientDatanodeProtocol file:
``GetReplicaVisibleLengthRequestProto{1 block ExtendedBlockProto}`` and
``GetReplicaVisibleLengthResponseProto{1 length uint64}``.
"""

from __future__ import annotations

from collections.abc import Callable

from hadoop_wire.rpc_framing import decode_varint, encode_varint
from hdfs_csi_pb.hadoop import hdfs_pb2
from minidfs import errors
from minidfs.faults import Faults
from minidfs.ipc import CallContext, MalformedRequest, RpcServer
from minidfs.listener import parse_message

PROTOCOL = "org.apache.hadoop.hdfs.protocol.ClientDatanodeProtocol"
REPLICA_NOT_FOUND = "org.apache.hadoop.hdfs.server.datanode.ReplicaNotFoundException"

_FIELD1_DELIMITED = 0x0A  # field 1, wire type 2
_FIELD1_VARINT = 0x08     # field 1, wire type 0


def parse_visible_length_request(body: bytes) -> hdfs_pb2.ExtendedBlockProto:
    """The ``block`` of a GetReplicaVisibleLengthRequestProto (other fields skipped)."""
    pos = 0
    block = None
    try:
        while pos < len(body):
            tag, pos = decode_varint(body, pos)
            wire_type = tag & 7
            if wire_type == 2:
                n, pos = decode_varint(body, pos)
                if tag == _FIELD1_DELIMITED:
                    block = body[pos:pos + n]
                pos += n
            elif wire_type == 0:
                _, pos = decode_varint(body, pos)
            elif wire_type in (1, 5):
                pos += 8 if wire_type == 1 else 4
            else:
                raise ValueError(f"wire type {wire_type}")
    except (ValueError, IndexError) as exc:
        raise MalformedRequest(f"bad GetReplicaVisibleLengthRequestProto: {exc}") from None
    if block is None or pos != len(body):
        raise MalformedRequest("GetReplicaVisibleLengthRequestProto without a block")
    return parse_message(hdfs_pb2.ExtendedBlockProto, block, MalformedRequest)  # type: ignore[return-value]


def visible_length_response(length: int) -> bytes:
    return bytes([_FIELD1_VARINT]) + encode_varint(length)


class DataNodeIpc:
    """The IPC endpoint of one DataNode; ``visible_length(block_id)`` is its replica
    lookup (None = no such replica)."""

    def __init__(self, name: str, visible_length: Callable[[int], int | None], *,
                 host: str, port: int = 0, faults: Faults | None = None):
        self._visible_length = visible_length
        self.server = RpcServer(self.dispatch, host=host, port=port, faults=faults, workers=4,
                                name=f"{name}-ipc")

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> int:
        self.server.start()
        return self.server.port

    def stop(self) -> None:
        self.server.stop()

    def dispatch(self, ctx: CallContext, method: str, body: bytes) -> bytes:
        if method != "getReplicaVisibleLength":
            raise errors.NoSuchMethod(f"Unknown method {method} called on {PROTOCOL} protocol.")
        block = parse_visible_length_request(body)
        length = self._visible_length(block.blockId)
        if length is None:
            # DataNode.getReplicaVisibleLength -> FsDatasetImpl.getReplicaInfo
            raise errors.RemoteError(
                f"Replica not found for {block.poolId}:blk_{block.blockId}_"
                f"{block.generationStamp}", java_class=REPLICA_NOT_FOUND)
        return visible_length_response(length)
