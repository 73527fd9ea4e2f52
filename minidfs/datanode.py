"""A DataNode: DataTransferProtocol v28 on its own port, replicas on disk.

Design choices and why:

* **Thread per connection**, blocking sockets, ``TCP_NODELAY``: the small
  acks otherwise stall on Nagle/delayed-ACK, and both clients pool and reuse
  connections, so the op loop runs until EOF.
* **Reads** slice precomputed CRCs from the ``.meta`` file and send each
  64 KiB packet with one ``sendmsg`` (prefix + CRCs + data, no joins); the
  file is read in up-to-1 MiB ``pread`` spans.
* **Writes** verify every chunk's CRC32C, write with ``pwrite`` at the
  packet's ``offsetInBlock`` (appends and Java's hflush re-sends are
  unaligned or overlapping), and ack every packet after its data is written.
* **Replication without forwarding:** the pipeline's other DataNodes live in
  this process, so the first DataNode applies each packet to every replica
  itself instead of relaying bytes over loopback.  Clients still see a real
  multi-node pipeline (one ack reply per node).
* Never call the namesystem while holding a replica lock: lock order is
  namesystem → DataNode, and the namesystem calls in for lease recovery.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable

import crc32c

from hadoop_wire.rpc_framing import (
    PeerClosed,
    WireError,
    delimited,
    recv_delimited,
    recv_exact,
    recv_into_exact,
)
from hdfs_csi_pb.hadoop import datatransfer_pb2 as dt
from hdfs_csi_pb.hadoop import hdfs_pb2
from minidfs import wire
from minidfs.blocks import DatanodeDescriptor
from minidfs.dn_ipc import DataNodeIpc
from minidfs.faults import Faults
from minidfs.listener import Listener, parse_message
from minidfs.storage import BPC, Replica, ReplicaError, ReplicaWriter, Storage, chunk_crcs

log = logging.getLogger(__name__)

PACKET_SIZE = 64 * 1024
READ_SPAN = 1024 * 1024
_READ_BUFFERS_KEPT = 16  # at most 16 MiB held idle
Stage = dt.OpWriteBlockProto

SUCCESS = dt.SUCCESS
ERROR = dt.ERROR
_CRC_STRUCT = struct.Struct(">I")
_CRC_FUNCS: dict[int, Callable[[memoryview], int] | None] = {
    hdfs_pb2.CHECKSUM_CRC32C: crc32c.crc32c,
    hdfs_pb2.CHECKSUM_CRC32: zlib.crc32,
    hdfs_pb2.CHECKSUM_NULL: None,
}


def _chunk_sums(data: memoryview, bpc: int, fn: Callable[[memoryview], int]) -> bytes:
    sums = [fn(data[i:i + bpc]) for i in range(0, len(data), bpc)]
    return struct.pack(f">{len(sums)}I", *sums)


class DataNode:
    def __init__(self, desc: DatanodeDescriptor, storage: Storage, namesystem: object,
                 faults: Faults, peers: Callable[[str, int], DataNode | None], *,
                 host: str = "127.0.0.1", port: int = 0, idle_timeout: float = 120.0,
                 heartbeat_interval: float = 3.0, ipc_port: int = 0):
        self.desc = desc
        self.index = desc.index
        self.storage = storage
        self.ns = namesystem
        self.faults = faults
        self.peers = peers
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        #: dfs.heartbeat.interval (3 s in HDFS and its MiniDFSCluster): how often this
        #: DataNode asks the NameNode for work, i.e. how late deleted files' replicas go
        self.heartbeat_interval = heartbeat_interval
        self._stopped = threading.Event()
        self.running = False
        self.replicas: dict[int, Replica] = {}
        self._lock = threading.Lock()
        self._listener = Listener(host, port, self._accept, f"dn{desc.index}")
        self.ipc_port = ipc_port
        self.ipc = DataNodeIpc(f"dn{desc.index}", self.visible_length, host=host, port=ipc_port,
                               faults=faults)
        # Read buffers kept between streams: a fresh 1 MiB object per read costs a
        # page fault per 4 KiB whenever several streams run at once (their malloc
        # arenas hand the memory back in between): 124k faults per GiB sent, 15k
        # with a buffer per stream, none with this free list (measured).
        self._read_buffers: list[bytearray] = []
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    # ==========================================================================
    # lifecycle
    # ==========================================================================
    def start(self) -> None:
        ns = self.ns
        replicas = self.storage.scan()
        actions = ns.block_report(self.index, [(r.block_id, r.length, r.finalized)  # type: ignore[attr-defined]
                                               for r in replicas.values()])
        for block_id, action in actions.items():
            rep = replicas[block_id]
            if action is None:
                self.storage.delete(rep)
                del replicas[block_id]
            else:
                with rep.lock:
                    if action < rep.length:
                        self.storage.truncate(rep, action)
                    self.storage.finalize(rep)
        with self._lock:
            self.replicas = replicas
        self._listener.port = self.port  # a restart binds the same port again
        self.running = True
        self.port = self._listener.open()
        self.ipc_port = self.ipc.start()
        with ns.lock:  # type: ignore[attr-defined]
            self.desc.xfer_port = self.port
            self.desc.ipc_port = self.ipc_port
            self.desc.host = self.host
            self.desc.handle = self
            self.desc.alive = True
        self._stopped.clear()
        threading.Thread(target=self._heartbeat_loop, daemon=True,
                         name=f"dn{self.index}-heartbeat").start()
        log.info("DataNode %d listening on %s:%d (%d replicas)", self.index, self.host,
                 self.port, len(replicas))

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self._stopped.set()
        self.ns.datanode_down(self.index)  # type: ignore[attr-defined]
        self._listener.close()
        self.ipc.stop()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.faults.wake()
        log.info("DataNode %d stopped", self.index)

    def _accept(self, conn: socket.socket, _addr: tuple) -> None:
        self._serve(conn)

    def _heartbeat_loop(self) -> None:
        stopped = self._stopped
        while not stopped.wait(self.heartbeat_interval):
            try:
                self.heartbeat()
            except Exception:
                log.exception("dn%d: heartbeat failed", self.index)

    def heartbeat(self) -> int:
        """One heartbeat: delete the replicas the NameNode invalidated since the last one
        (files deleted, blocks abandoned or truncated away); returns how many."""
        if not self.running:
            return 0
        blocks = self.ns.heartbeat(self.index)  # type: ignore[attr-defined]
        for block_id in blocks:
            self.delete_replica(block_id)
        return len(blocks)

    # ==========================================================================
    # in-process calls from the namesystem / other DataNodes
    # ==========================================================================
    def visible_length(self, block_id: int) -> int | None:
        rep = self.replicas.get(block_id)
        return None if rep is None else rep.visible

    def delete_replica(self, block_id: int) -> None:
        with self._lock:
            rep = self.replicas.pop(block_id, None)
        if rep is not None:
            with rep.lock:
                rep.epoch += 1
                self.storage.delete(rep)

    def recover_replica(self, block_id: int, length: int) -> bool:
        """Lease recovery: stop any writer, cut to ``length``, finalize."""
        rep = self.replicas.get(block_id)
        if rep is None:
            return False
        with rep.lock:
            rep.epoch += 1
            if rep.length < length:
                return False
            if rep.length > length:
                self.storage.truncate(rep, length)
            self.storage.finalize(rep)
        return True

    def copy_replica_to(self, block_id: int, target: DataNode) -> int | None:
        """Re-replication: copy a finalized replica into ``target``'s storage."""
        rep = self.replicas.get(block_id)
        if rep is None or not rep.finalized or not target.running:
            return None
        copy = target.storage.import_copy(block_id, rep)
        with target._lock:
            target.replicas[block_id] = copy
        return copy.length

    def import_replica(self, src: Replica, length: int, finalized: bool) -> None:
        """TRANSFER_BLOCK target: a copy of the first ``length`` bytes of ``src`` (another
        DataNode's replica), rbw unless ``finalized``, replacing any stale copy here."""
        if not self.running:
            raise ReplicaError(f"DataNode {self.index} is not running")
        copy = self.storage.import_prefix(src.block_id, src, length)
        if not finalized:
            with copy.lock:
                self.storage.unfinalize(copy)
        with self._lock:
            old = self.replicas.get(src.block_id)
            self.replicas[src.block_id] = copy
        if old is not None:
            with old.lock:
                old.epoch += 1  # a writer still holding the stale copy must stop

    def copy_prefix(self, block_id: int, new_block_id: int, length: int) -> bool:
        """Truncate support: a new finalized replica with the first ``length`` bytes."""
        rep = self.replicas.get(block_id)
        if rep is None or not self.running or rep.length < length:
            return False
        copy = self.storage.import_prefix(new_block_id, rep, length)
        with self._lock:
            self.replicas[new_block_id] = copy
        return True

    def _open_replica_for_write(self, block_id: int, stage: int,
                                min_bytes: int) -> ReplicaWriter:
        if not self.running:
            raise ReplicaError(f"DataNode {self.index} is not running")
        with self._lock:
            rep = self.replicas.get(block_id)
            if stage == Stage.PIPELINE_SETUP_CREATE:
                if rep is not None:
                    if rep.finalized:
                        raise ReplicaError(f"replica {block_id} already exists (finalized)")
                    with rep.lock:
                        rep.epoch += 1
                rep = self.storage.create_rbw(block_id)
                self.replicas[block_id] = rep
            elif stage in (Stage.PIPELINE_SETUP_APPEND, Stage.PIPELINE_SETUP_APPEND_RECOVERY,
                           Stage.PIPELINE_SETUP_STREAMING_RECOVERY,
                           Stage.PIPELINE_CLOSE_RECOVERY):
                if rep is None:
                    raise ReplicaError(f"replica {block_id} not found for append/recovery")
                with rep.lock:
                    if stage == Stage.PIPELINE_SETUP_APPEND and rep.length != min_bytes:
                        raise ReplicaError(f"replica {block_id} has {rep.length} bytes, "
                                           f"append expected {min_bytes}")
                    if stage != Stage.PIPELINE_CLOSE_RECOVERY:
                        rep.epoch += 1
                        self.storage.unfinalize(rep)
            else:
                stage_name = Stage.BlockConstructionStage.Name(stage)
                raise ReplicaError(f"unsupported write stage {stage_name}")
        return ReplicaWriter(self.storage, rep)

    # ==========================================================================
    # connections
    # ==========================================================================
    def _serve(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.idle_timeout)
        with self._conns_lock:
            self._conns.add(sock)
        try:
            while self.running:
                head = recv_exact(sock, 3)
                version = (head[0] << 8) | head[1]
                if version != wire.DATA_TRANSFER_VERSION:
                    raise WireError(f"unsupported DataTransferProtocol version {version}")
                op = head[2]
                body = recv_delimited(sock, wire.MAX_OP_PROTO)
                if op == wire.OP_READ_BLOCK:
                    if not self._read_block(sock, body):
                        return
                elif op == wire.OP_WRITE_BLOCK:
                    if not self._write_block(sock, body):
                        return
                elif op == wire.OP_BLOCK_CHECKSUM:
                    self._block_checksum(sock, body)
                elif op == wire.OP_TRANSFER_BLOCK:
                    self._transfer_block(sock, body)
                else:
                    name = wire.OP_NAMES.get(op, str(op))
                    self._send_status(sock, dt.ERROR_UNSUPPORTED,
                                      f"minidfs DataNode does not support op {name}")
                    return
        except PeerClosed:
            pass
        except (TimeoutError, WireError) as exc:
            log.info("dn%d: closing connection: %s", self.index, exc)
        except OSError as exc:
            if self.running and exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                log.info("dn%d: connection error: %s", self.index, exc)
        except Exception:
            log.exception("dn%d: unexpected error serving a connection", self.index)
        finally:
            with self._conns_lock:
                self._conns.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    @staticmethod
    def _parse(msg_cls: type, body: bytes) -> object:
        return parse_message(msg_cls, body, WireError)

    @staticmethod
    def _send_status(sock: socket.socket, status: int, message: str = "",
                     bad_link: str | None = None) -> None:
        resp = dt.BlockOpResponseProto(status=status)
        if message:
            resp.message = message
        if bad_link is not None:
            resp.firstBadLink = bad_link
        sock.sendall(delimited(resp.SerializeToString()))

    # ==========================================================================
    # READ_BLOCK
    # ==========================================================================
    def _read_block(self, sock: socket.socket, body: bytes) -> bool:
        op: dt.OpReadBlockProto = self._parse(dt.OpReadBlockProto, body)  # type: ignore[assignment]
        block = op.header.baseHeader.block
        failure = self.faults.take_failure("READ_BLOCK")
        if failure is not None:
            self._send_status(sock, ERROR, f"{failure[0]}: {failure[1]}")
            return True
        rep = self.replicas.get(block.blockId)
        if rep is None:
            self._send_status(sock, ERROR, f"Replica not found for BP:blk_{block.blockId}"
                                           f"_{block.generationStamp} on dn{self.index}")
            return True
        visible = rep.visible
        offset = op.offset
        if offset > visible:
            self._send_status(sock, ERROR, f"Offset {offset} and length {op.len} don't match "
                                           f"block blk_{block.blockId} (blockLen {visible})")
            return True
        want_end = min(visible, offset + op.len)
        chunk_off = offset - offset % BPC
        end = min(visible, -(-want_end // BPC) * BPC) if op.len else chunk_off
        use_crc = op.sendChecksums
        resp = dt.BlockOpResponseProto(status=SUCCESS)
        info = resp.readOpChecksumInfo
        info.checksum.type = hdfs_pb2.CHECKSUM_CRC32C if use_crc else hdfs_pb2.CHECKSUM_NULL
        info.checksum.bytesPerChecksum = BPC
        info.chunkOffset = chunk_off
        sock.sendall(delimited(resp.SerializeToString()))

        seqno = 0
        if end > chunk_off:
            seqno = self._send_range(sock, rep, chunk_off, end, use_crc)
        # the mandatory empty last packet
        sock.sendall(wire.packet_prefix(end, seqno, True, 0, 0))
        try:
            status = recv_delimited(sock, 64)
        except PeerClosed:
            return False
        del status  # CHECKSUM_OK from hdfs-native, SUCCESS from Java: either is fine
        return True

    def _open_for_read(self, rep: Replica, use_crc: bool) -> tuple[int, int]:
        for _ in range(3):  # the replica may be renamed rbw -> finalized under us
            data_path, meta_path = rep.data_path, rep.meta_path
            try:
                fd = os.open(data_path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            mfd = -1
            if use_crc:
                try:
                    mfd = os.open(meta_path, os.O_RDONLY)
                except FileNotFoundError:
                    mfd = -1
            return fd, mfd
        raise ReplicaError(f"replica {rep.block_id} disappeared")

    def _send_range(self, sock: socket.socket, rep: Replica, start: int, end: int,
                    use_crc: bool) -> int:
        """Send data packets covering [start, end) (start chunk-aligned). Returns next seqno."""
        faults = self.faults
        limiter = faults.stream_limiter()
        fd, mfd = self._open_for_read(rep, use_crc)
        seqno = 0
        running = self._is_running
        with self._lock:
            raw = self._read_buffers.pop() if self._read_buffers else bytearray(READ_SPAN)
        buf = memoryview(raw)
        try:
            pos = start
            while pos < end:
                span = min(READ_SPAN, end - pos)
                mv = buf[:span]
                if os.preadv(fd, [mv], pos) != span:
                    raise WireError(f"replica {rep.block_id} shorter than expected")
                if use_crc:
                    nchunks = -(-span // BPC)
                    crcs = os.pread(mfd, nchunks * 4, pos // BPC * 4) if mfd >= 0 else b""
                    tail = span % BPC
                    if len(crcs) != nchunks * 4:
                        crcs = chunk_crcs(mv)
                    elif tail:
                        # a replica being written may still extend this chunk: recompute
                        crcs = crcs[:-4] + _CRC_STRUCT.pack(crc32c.crc32c(mv[span - tail:]))
                    cv = memoryview(crcs)
                p = 0
                while p < span:
                    n = min(PACKET_SIZE, span - p)
                    if faults._stalls:
                        faults.wait_read(self.index, running)
                        if not self.running:
                            raise WireError("DataNode stopped")
                    if faults.packet_latency:
                        time.sleep(faults.packet_latency)
                    if limiter is not None:
                        limiter.acquire(n)
                    if use_crc:
                        c0 = p // BPC * 4
                        csum = cv[c0:c0 + (-(-n // BPC)) * 4]
                        wire.sendmsg_all(sock, [wire.packet_prefix(pos + p, seqno, False, n,
                                                                   len(csum)), csum, mv[p:p + n]])
                    else:
                        wire.sendmsg_all(sock, [wire.packet_prefix(pos + p, seqno, False, n, 0),
                                                mv[p:p + n]])
                    seqno += 1
                    p += n
                pos += span
        finally:
            os.close(fd)
            if mfd >= 0:
                os.close(mfd)
            with self._lock:  # the views into it are not used after this
                if len(self._read_buffers) < _READ_BUFFERS_KEPT:
                    self._read_buffers.append(raw)
        return seqno

    def _is_running(self) -> bool:
        return self.running

    # ==========================================================================
    # WRITE_BLOCK
    # ==========================================================================
    def _write_block(self, sock: socket.socket, body: bytes) -> bool:
        op: dt.OpWriteBlockProto = self._parse(dt.OpWriteBlockProto, body)  # type: ignore[assignment]
        block = op.header.baseHeader.block
        block_id = block.blockId
        stage = op.stage
        failure = self.faults.take_failure("WRITE_BLOCK")
        if failure is not None:
            self._send_status(sock, ERROR, f"{failure[0]}: {failure[1]}", bad_link="")
            return True
        bpc = op.requestedChecksum.bytesPerChecksum
        crc_type = op.requestedChecksum.type
        if not 0 < bpc <= 1 << 20 or crc_type not in _CRC_FUNCS:
            self._send_status(sock, dt.ERROR_UNSUPPORTED,
                              f"unsupported checksum {crc_type}/{bpc}", bad_link="")
            return True
        nodes: list[DataNode] = [self]
        for t in op.targets:
            peer = self.peers(t.id.datanodeUuid, t.id.xferPort)
            if peer is None or not peer.running:
                self._send_status(sock, ERROR, "pipeline target is down",
                                  bad_link=f"{t.id.ipAddr}:{t.id.xferPort}")
                return True
            nodes.append(peer)
        writers: list[tuple[DataNode, ReplicaWriter]] = []
        try:
            for dn in nodes:
                writers.append((dn, dn._open_replica_for_write(block_id, stage,
                                                               op.minBytesRcvd)))
        except (ReplicaError, OSError) as exc:
            for _, w in writers:
                w.close()
            self._send_status(sock, ERROR, str(exc), bad_link="")
            return True
        for dn, _ in writers:
            if not self.ns.replica_receiving(dn.index, block_id):  # type: ignore[attr-defined]
                for _, w in writers:
                    w.close()
                self._send_status(sock, ERROR, f"block {block_id} is not known to the "
                                               f"NameNode", bad_link="")
                return True
        try:
            if stage == Stage.PIPELINE_CLOSE_RECOVERY:
                self._finalize(block_id, writers)
                self._send_status(sock, SUCCESS, bad_link="")
                return True
            self._send_status(sock, SUCCESS, bad_link="")
            return self._receive_packets(sock, block_id, writers, crc_type, bpc)
        finally:
            for _, w in writers:
                w.close()

    def _receive_packets(self, sock: socket.socket, block_id: int,
                         writers: list[tuple[DataNode, ReplicaWriter]], crc_type: int,
                         bpc: int) -> bool:
        """Receive, verify and store packets.  Clients may checksum with CRC32 or another
        chunk size; replicas always store CRC32C/512 (translated, like a DataNode whose
        on-disk checksum differs from the writer's), so reads need no per-block type."""
        verify = crc_type != hdfs_pb2.CHECKSUM_NULL
        native = crc_type == hdfs_pb2.CHECKSUM_CRC32C and bpc == BPC
        crc_fn = _CRC_FUNCS[crc_type]
        faults = self.faults
        limiter = faults.stream_limiter()
        buf = bytearray(PACKET_SIZE + PACKET_SIZE // BPC * 4 + 64)
        n_nodes = len(writers)
        ok_replies = [SUCCESS] * n_nodes
        while True:
            try:
                prefix = recv_exact(sock, 6)
            except PeerClosed:
                return False  # writer went away mid-block: replicas stay rbw until recovery
            payload_len, header_len = wire.parse_prefix(prefix)
            total = header_len + payload_len - 4
            if total > len(buf):
                buf = bytearray(total)
            view = memoryview(buf)[:total]
            recv_into_exact(sock, view)
            offset, seqno, last, data_len, sync = wire.parse_header(view[:header_len])
            if seqno == -1 and data_len == 0 and not last:  # heartbeat
                sock.sendall(wire.pipeline_ack(-1, ok_replies))
                continue
            body = view[header_len:]
            csum_len = len(body) - data_len
            n_chunks = -(-data_len // bpc)
            if data_len < 0 or offset < 0 or csum_len not in (n_chunks * 4, 0) or \
                    (verify and csum_len != n_chunks * 4):
                raise WireError(f"inconsistent packet: dataLen={data_len} "
                                f"checksums={csum_len} bytes")
            csums = body[:csum_len]
            data = body[csum_len:]
            if data_len:
                if verify and (chunk_crcs(data) if native else
                               _chunk_sums(data, bpc, crc_fn)) != csums:
                    log.warning("dn%d: checksum error in block %d, packet at offset %d",
                                self.index, block_id, offset)
                    sock.sendall(wire.pipeline_ack(
                        seqno, [dt.ERROR_CHECKSUM] + [SUCCESS] * (n_nodes - 1)))
                    return False
                if faults.packet_latency:
                    time.sleep(faults.packet_latency)
                if limiter is not None:
                    limiter.acquire(data_len)
                crc_view = csums if (csum_len and native) else None
                for dn, w in list(writers):
                    try:
                        if dn is not self and not dn.running:
                            raise ReplicaError(f"DataNode {dn.index} stopped")
                        w.write(offset, data, crc_view)
                    except (ReplicaError, OSError) as exc:
                        if dn is self:
                            log.info("dn%d: write to block %d failed: %s", self.index,
                                     block_id, exc)
                            sock.sendall(wire.pipeline_ack(seqno, [ERROR] * n_nodes))
                            return False
                        # a downstream replica failed: carry on with fewer replicas
                        log.warning("dn%d: dropping replica on dn%d from the pipeline of "
                                    "block %d: %s", self.index, dn.index, block_id, exc)
                        w.close()
                        writers.remove((dn, w))
                        self.ns.replica_failed(dn.index, block_id)  # type: ignore[attr-defined]
            if sync:
                for _, w in writers:
                    w.sync()
            for _, w in writers:
                w.publish()
            if sync:
                length = writers[0][1].rep.length
                self.ns.replica_synced(self.index, block_id, length)  # type: ignore[attr-defined]
                self.ns.sync()  # type: ignore[attr-defined]  # the durable length, durably
            if last:
                self._finalize(block_id, writers)
            sock.sendall(wire.pipeline_ack(seqno, ok_replies))
            if last:
                return True

    # ==========================================================================
    # TRANSFER_BLOCK (a writer adds a DataNode to its pipeline)
    # ==========================================================================
    def _transfer_block(self, sock: socket.socket, body: bytes) -> None:
        """Copy this replica's visible bytes to the targets, as HDFS's
        ``transferReplicaForPipelineRecovery`` does after ``getAdditionalDatanode``: the
        writer then sets up the pipeline again with the new node (a recovery or append
        stage) and goes on.  An rbw replica is copied as rbw, a finalized one finalized.
        The targets live in this process, so the copy is a file copy, not a stream."""
        op: dt.OpTransferBlockProto = self._parse(dt.OpTransferBlockProto, body)  # type: ignore[assignment]
        block = op.header.baseHeader.block
        failure = self.faults.take_failure("TRANSFER_BLOCK")
        if failure is not None:
            self._send_status(sock, ERROR, f"{failure[0]}: {failure[1]}")
            return
        rep = self.replicas.get(block.blockId)
        if rep is None:
            self._send_status(sock, ERROR, f"Replica not found for BP:blk_{block.blockId}"
                                           f"_{block.generationStamp} on dn{self.index}")
            return
        targets: list[DataNode] = []
        for t in op.targets:
            peer = self.peers(t.id.datanodeUuid, t.id.xferPort)
            if peer is None or not peer.running:
                self._send_status(sock, ERROR, f"transfer target {t.id.ipAddr}:"
                                               f"{t.id.xferPort} is down")
                return
            targets.append(peer)
        with rep.lock:
            length, finalized = rep.visible, rep.finalized
        try:
            for peer in targets:
                peer.import_replica(rep, length, finalized)
        except (ReplicaError, OSError) as exc:
            self._send_status(sock, ERROR, f"transfer of blk_{block.blockId} failed: {exc}")
            return
        self._send_status(sock, SUCCESS)

    # ==========================================================================
    # BLOCK_CHECKSUM (getFileChecksum, distcp)
    # ==========================================================================
    def _block_checksum(self, sock: socket.socket, body: bytes) -> None:
        """MD5 over the block's chunk CRCs (HDFS "MD5CRC"), for the requested length."""
        op: dt.OpBlockChecksumProto = self._parse(dt.OpBlockChecksumProto, body)  # type: ignore[assignment]
        block = op.header.block
        if op.blockChecksumOptions.blockChecksumType == dt.COMPOSITE_CRC:
            self._send_status(sock, dt.ERROR_UNSUPPORTED, "COMPOSITE_CRC is not supported")
            return
        rep = self.replicas.get(block.blockId)
        if rep is None:
            self._send_status(sock, ERROR, f"Replica not found for blk_{block.blockId}")
            return
        length = rep.visible
        if block.HasField("numBytes") and 0 < block.numBytes < length:
            length = block.numBytes
        nchunks = -(-length // BPC)
        with open(rep.meta_path, "rb") as m:
            crcs = m.read(nchunks * 4)
        if len(crcs) != nchunks * 4 or length % BPC:
            # recompute what the meta file cannot vouch for: the partial last chunk
            # (or everything, if the meta file is short)
            start = (length - 1) // BPC * BPC if len(crcs) == nchunks * 4 else 0
            with open(rep.data_path, "rb") as f:
                f.seek(start)
                tail = f.read(length - start)
            crcs = crcs[:start // BPC * 4] + chunk_crcs(tail)
        resp = dt.BlockOpResponseProto(status=SUCCESS)
        cr = resp.checksumResponse
        cr.bytesPerCrc = BPC
        cr.crcPerBlock = nchunks
        cr.blockChecksum = hashlib.md5(crcs, usedforsecurity=False).digest()
        cr.crcType = hdfs_pb2.CHECKSUM_CRC32C
        sock.sendall(delimited(resp.SerializeToString()))

    def _finalize(self, block_id: int, writers: list[tuple[DataNode, ReplicaWriter]]) -> None:
        for dn, w in writers:
            rep = w.rep
            with rep.lock:
                if rep.epoch != w.epoch:
                    continue  # recovered by the NameNode meanwhile: it finalized it
                dn.storage.finalize(rep)
                length = rep.length
            if not self.ns.replica_finalized(dn.index, block_id, length):  # type: ignore[attr-defined]
                dn.delete_replica(block_id)
        self.ns.sync()  # type: ignore[attr-defined]
