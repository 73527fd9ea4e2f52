"""ClientNamenodeProtocol handlers: protobuf in, namesystem call, protobuf out.

This module is the only place that knows both the wire messages and the
namesystem, and it encodes the client-compatibility rules of the protocol
notes (docs/hdfs-wire-protocol.md), e.g.:

* ``ExtendedBlockProto.numBytes`` always present (hdfs-native unwraps it);
* one ``storageTypes``/``storageIDs`` entry per location (it indexes [0]);
* a last block under construction is left out of ``fileLength`` with
  ``isLastBlockComplete=false``, as HDFS does: Java readers ask the DataNode
  (``minidfs.dn_ipc``) for its visible length, hdfs-native reads the
  completed blocks only;
* getFileInfo returns an *empty* path, listings return local names;
* ``isCached`` is parallel to ``locs`` and only the blocks of ``LocatedBlocks.blocks``
  carry it (HDFS's CacheManager.setCachedLocations walks that list; ``lastBlock`` is a
  separate LocatedBlock it never marks, and nothing is reordered for caching).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from hadoop_wire.rpc_framing import QUOTA_DONT_SET, UINT64_MAX
from hdfs_csi_pb.hadoop import hdfs_pb2 as hp
from hdfs_csi_pb.hadoop import namenode_pb2 as nn
from minidfs import errors
from minidfs.blocks import DatanodeDescriptor
from minidfs.caching import CacheDirective, DirectiveInfo, PoolInfo, PoolStats
from minidfs.inodes import Block, INode, INodeDirectory, INodeFile, Snapshot
from minidfs.ipc import CallContext, parse_request
from minidfs.namesystem import (
    BYTES_PER_CHECKSUM,
    CREATE_FLAG_NEW_BLOCK,
    LocatedBlock,
    LocatedFile,
    Namesystem,
    Resolved,
)

log = logging.getLogger(__name__)

Handler = Callable[["NameNode", Any, Any], Any]
_HANDLERS: dict[str, tuple[type, Handler]] = {}

# Calls that never change the namespace: no journal sync needed after them.
_READ_ONLY = {"getFileInfo", "getListing", "getBlockLocations", "getServerDefaults",
              "getContentSummary", "getFsStats", "getAclStatus", "getPreferredBlockSize",
              "isFileClosed", "msync", "renewLease", "getSnapshottableDirListing",
              "getLinkTarget", "getFileLinkInfo", "getQuotaUsage", "listCachePools",
              "listCacheDirectives"}


def rpc(name: str, request: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = (request, fn)
        return fn
    return register


def _u64(value: int) -> int:
    """Java longs travel as uint64: -1 becomes 2^64-1."""
    return value & UINT64_MAX


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


class NameNode:
    def __init__(self, ns: Namesystem):
        self.ns = ns
        self._dn_cache: dict[tuple[int, int, int, bool], hp.DatanodeInfoProto] = {}

    # -- dispatch ------------------------------------------------------------------
    def dispatch(self, ctx: CallContext, method: str, body: bytes) -> bytes:
        entry = _HANDLERS.get(method)
        if entry is None:
            raise errors.NoSuchMethod(
                f"Unknown method {method} called on org.apache.hadoop.hdfs.protocol."
                f"ClientProtocol protocol.")
        req_cls, fn = entry
        req = parse_request(req_cls, body)
        caller = self.ns.caller(ctx.user)
        try:
            resp = fn(self, caller, req)
        finally:
            if method not in _READ_ONLY:
                self.ns.sync()
        return resp.SerializeToString()

    # -- proto builders -----------------------------------------------------------
    def _dn_info(self, d: DatanodeDescriptor) -> hp.DatanodeInfoProto:
        key = (d.index, d.xfer_port, d.ipc_port, d.alive)
        info = self._dn_cache.get(key)
        if info is None:
            info = hp.DatanodeInfoProto()
            i = info.id
            i.ipAddr = d.host
            i.hostName = "localhost" if d.host.startswith("127.") else d.host
            i.datanodeUuid = d.uuid
            i.xferPort = d.xfer_port
            i.infoPort = 0
            i.ipcPort = d.ipc_port
            info.capacity = 0
            info.dfsUsed = 0
            info.remaining = 0
            info.blockPoolUsed = 0
            info.lastUpdate = int(time.time() * 1000)
            info.xceiverCount = 0
            info.location = "/default-rack"
            info.adminState = hp.DatanodeInfoProto.NORMAL
            self._dn_cache[key] = info
        return info

    def _located_block(self, lb: LocatedBlock, out: hp.LocatedBlockProto,
                       cached: set[int] | None = None) -> None:
        """``cached``: indexes of the DataNodes holding a cached replica (isCached)."""
        b = out.b
        b.poolId = self.ns.block_pool_id
        b.blockId = lb.block.id
        b.generationStamp = lb.block.gs
        b.numBytes = lb.length
        out.offset = _u64(lb.offset)
        out.corrupt = False
        tok = out.blockToken
        tok.identifier = b""
        tok.password = b""
        tok.kind = ""
        tok.service = ""
        for d in lb.locations:
            out.locs.append(self._dn_info(d))
            out.storageTypes.append(hp.DISK)
            out.storageIDs.append(d.storage_id)
        if lb.locations:
            on = cached or set()
            out.isCached.extend([d.index in on for d in lb.locations])

    def _located_blocks(self, lf: LocatedFile, out: hp.LocatedBlocksProto,
                        cached: dict[int, set[int]] | None = None) -> None:
        """``cached``: :meth:`CacheManager.cached_replicas`, computed here if not given
        (a listing computes it once for all its files)."""
        if cached is None:
            cached = self.ns.cache.cached_replicas()
        out.fileLength = lf.file_length
        for lb in lf.blocks:
            self._located_block(lb, out.blocks.add(), cached.get(lb.block.id))
        out.underConstruction = lf.under_construction
        if lf.last is not None:
            self._located_block(lf.last, out.lastBlock)
        out.isLastBlockComplete = lf.last_complete

    def _status(self, node: INode | Snapshot, name: bytes, out: hp.HdfsFileStatusProto,
                need_location: bool = False,
                cached: dict[int, set[int]] | None = None) -> None:
        if isinstance(node, Snapshot):
            self._status(node.root, name, out)
            out.modification_time = node.ctime
            return
        out.path = name
        out.permission.perm = node.perm
        out.owner = node.owner
        out.group = node.group
        out.modification_time = node.mtime
        out.access_time = node.atime
        out.fileId = node.id
        out.storagePolicy = 0
        if isinstance(node, INodeFile):
            out.fileType = hp.HdfsFileStatusProto.IS_FILE
            out.length = self.ns.file_length(node)
            out.block_replication = node.replication
            out.blocksize = node.block_size
            out.childrenNum = 0
            out.flags = 0
            if need_location:
                self._located_blocks(self.ns.locate(node), out.locations, cached)
        else:
            assert isinstance(node, INodeDirectory)
            out.fileType = hp.HdfsFileStatusProto.IS_DIR
            out.length = 0
            out.block_replication = 0
            out.blocksize = 0
            out.childrenNum = len(node.children)
            out.flags = hp.HdfsFileStatusProto.SNAPSHOT_ENABLED if node.snapshottable else 0

    def _dotsnapshot_status(self, d: INodeDirectory, out: hp.HdfsFileStatusProto) -> None:
        self._status(d, b"", out)
        out.childrenNum = len(d.snapshots)
        out.flags = 0
        out.permission.perm = 0o555

    def _file_status(self, res: Resolved, out: hp.HdfsFileStatusProto) -> None:
        if res.dotsnapshot is not None:
            self._dotsnapshot_status(res.dotsnapshot, out)
        else:
            self._status(res.deepest, b"", out)

    def server_defaults(self, out: hp.FsServerDefaultsProto) -> None:
        cfg = self.ns.config
        out.blockSize = cfg.block_size
        out.bytesPerChecksum = BYTES_PER_CHECKSUM
        out.writePacketSize = 64 * 1024
        out.replication = cfg.replication
        out.fileBufferSize = 4096
        out.encryptDataTransfer = False
        out.trashInterval = cfg.trash_interval
        out.checksumType = hp.CHECKSUM_CRC32C
        out.policyId = 0

    def _peers(self, infos: Any) -> set[int]:
        """DataNode indexes named by DatanodeInfoProto/DatanodeIDProto entries."""
        return set(self._peer_list(infos))

    def _peer_list(self, infos: Any) -> list[int]:
        """Like :meth:`_peers`, in the order given (a pipeline's order), unknown ones left out."""
        found: list[int] = []
        for info in infos:
            ident = info.id if hasattr(info, "id") else info
            d = self.ns.bm.by_uuid(ident.datanodeUuid) or \
                self.ns.bm.by_address(ident.ipAddr, ident.xferPort)
            if d is not None and d.index not in found:
                found.append(d.index)
        return found


# =============================================================================
# handlers
# =============================================================================
@rpc("getFileInfo", nn.GetFileInfoRequestProto)
def _get_file_info(self: NameNode, caller: Any, req: nn.GetFileInfoRequestProto) -> Any:
    resp = nn.GetFileInfoResponseProto()
    with self.ns.lock:
        res = self.ns.get_info(caller, req.src)
        if res is not None:
            self._file_status(res, resp.fs)
    return resp


@rpc("getListing", nn.GetListingRequestProto)
def _get_listing(self: NameNode, caller: Any, req: nn.GetListingRequestProto) -> Any:
    resp = nn.GetListingResponseProto()
    with self.ns.lock:
        page = self.ns.list_dir(caller, req.src, req.startAfter)
        if page is None:
            return resp
        entries, remaining = page
        listing = resp.dirList
        cached = self.ns.cache.cached_replicas() if req.needLocation else None
        for name, node in entries:
            self._status(node, name, listing.partialListing.add(), req.needLocation, cached)
        listing.remainingEntries = remaining
    return resp


@rpc("getBlockLocations", nn.GetBlockLocationsRequestProto)
def _get_block_locations(self: NameNode, caller: Any,
                         req: nn.GetBlockLocationsRequestProto) -> Any:
    resp = nn.GetBlockLocationsResponseProto()
    with self.ns.lock:
        located = self.ns.get_block_locations(caller, req.src, req.offset, req.length)
        self._located_blocks(located, resp.locations)
    return resp


@rpc("getServerDefaults", nn.GetServerDefaultsRequestProto)
def _get_server_defaults(self: NameNode, caller: Any, req: Any) -> Any:
    resp = nn.GetServerDefaultsResponseProto()
    self.server_defaults(resp.serverDefaults)
    return resp


@rpc("create", nn.CreateRequestProto)
def _create(self: NameNode, caller: Any, req: nn.CreateRequestProto) -> Any:
    resp = nn.CreateResponseProto()
    with self.ns.lock:
        f = self.ns.create(caller, req.src, req.masked.perm, req.clientName, req.createFlag,
                           req.createParent, req.replication, req.blockSize)
        self._status(f, b"", resp.fs)
    return resp


@rpc("addBlock", nn.AddBlockRequestProto)
def _add_block(self: NameNode, caller: Any, req: nn.AddBlockRequestProto) -> Any:
    resp = nn.AddBlockResponseProto()
    previous = (req.previous.blockId, req.previous.numBytes) if req.HasField("previous") else None
    with self.ns.lock:
        _, lb = self.ns.add_block(req.src, req.clientName, previous, req.fileId,
                                  self._peers(req.excludeNodes))
        self._located_block(lb, resp.block)
    return resp


@rpc("complete", nn.CompleteRequestProto)
def _complete(self: NameNode, caller: Any, req: nn.CompleteRequestProto) -> Any:
    last = (req.last.blockId, req.last.numBytes) if req.HasField("last") else None
    return nn.CompleteResponseProto(
        result=self.ns.complete(req.src, req.clientName, last, req.fileId))


@rpc("abandonBlock", nn.AbandonBlockRequestProto)
def _abandon_block(self: NameNode, caller: Any, req: nn.AbandonBlockRequestProto) -> Any:
    self.ns.abandon_block(req.src, req.holder, req.b.blockId, req.fileId)
    return nn.AbandonBlockResponseProto()


@rpc("renewLease", nn.RenewLeaseRequestProto)
def _renew_lease(self: NameNode, caller: Any, req: nn.RenewLeaseRequestProto) -> Any:
    self.ns.renew_lease(req.clientName)
    return nn.RenewLeaseResponseProto()


@rpc("fsync", nn.FsyncRequestProto)
def _fsync(self: NameNode, caller: Any, req: nn.FsyncRequestProto) -> Any:
    self.ns.fsync(req.src, req.client, req.lastBlockLength, req.fileId)
    return nn.FsyncResponseProto()


@rpc("append", nn.AppendRequestProto)
def _append(self: NameNode, caller: Any, req: nn.AppendRequestProto) -> Any:
    resp = nn.AppendResponseProto()
    with self.ns.lock:
        f, lb = self.ns.append(caller, req.src, req.clientName,
                               bool(req.flag & CREATE_FLAG_NEW_BLOCK))
        if lb is not None:
            self._located_block(lb, resp.block)
        self._status(f, b"", resp.stat)
    return resp


@rpc("recoverLease", nn.RecoverLeaseRequestProto)
def _recover_lease(self: NameNode, caller: Any, req: nn.RecoverLeaseRequestProto) -> Any:
    return nn.RecoverLeaseResponseProto(
        result=self.ns.recover_lease(caller, req.src, req.clientName))


@rpc("updateBlockForPipeline", nn.UpdateBlockForPipelineRequestProto)
def _update_block_for_pipeline(self: NameNode, caller: Any,
                               req: nn.UpdateBlockForPipelineRequestProto) -> Any:
    resp = nn.UpdateBlockForPipelineResponseProto()
    with self.ns.lock:
        lb = self.ns.update_block_for_pipeline(req.clientName, req.block.blockId)
        lb.length = req.block.numBytes
        self._located_block(lb, resp.block)
    return resp


@rpc("updatePipeline", nn.UpdatePipelineRequestProto)
def _update_pipeline(self: NameNode, caller: Any, req: nn.UpdatePipelineRequestProto) -> Any:
    with self.ns.lock:
        nodes = [self.ns.bm.datanodes[i] for i in sorted(self._peers(req.newNodes))]
        self.ns.update_pipeline(req.clientName, req.oldBlock.blockId,
                                req.newBlock.generationStamp, req.newBlock.numBytes, nodes)
    return nn.UpdatePipelineResponseProto()


@rpc("getAdditionalDatanode", nn.GetAdditionalDatanodeRequestProto)
def _get_additional_datanode(self: NameNode, caller: Any,
                             req: nn.GetAdditionalDatanodeRequestProto) -> Any:
    resp = nn.GetAdditionalDatanodeResponseProto()
    with self.ns.lock:
        existing = [self.ns.bm.datanodes[i] for i in self._peer_list(req.existings)]
        nodes = self.ns.additional_datanodes(req.src, req.clientName, req.fileId, existing,
                                             self._peers(req.excludes),
                                             req.numAdditionalNodes)
        blk = req.blk
        # HDFS answers with the client's block as sent and offset -1 (newLocatedBlock(blk,
        # targets, -1, false)): the block is not looked up, only the nodes are chosen.
        lb = LocatedBlock(Block(blk.blockId, blk.generationStamp, blk.numBytes), -1,
                          blk.numBytes, nodes)
        self._located_block(lb, resp.block)
    return resp


@rpc("truncate", nn.TruncateRequestProto)
def _truncate(self: NameNode, caller: Any, req: nn.TruncateRequestProto) -> Any:
    return nn.TruncateResponseProto(
        result=self.ns.truncate(caller, req.src, req.newLength, req.clientName))


@rpc("mkdirs", nn.MkdirsRequestProto)
def _mkdirs(self: NameNode, caller: Any, req: nn.MkdirsRequestProto) -> Any:
    return nn.MkdirsResponseProto(
        result=self.ns.mkdirs(caller, req.src, req.masked.perm, req.createParent))


@rpc("rename", nn.RenameRequestProto)
def _rename(self: NameNode, caller: Any, req: nn.RenameRequestProto) -> Any:
    return nn.RenameResponseProto(result=self.ns.rename(caller, req.src, req.dst))


@rpc("rename2", nn.Rename2RequestProto)
def _rename2(self: NameNode, caller: Any, req: nn.Rename2RequestProto) -> Any:
    self.ns.rename2(caller, req.src, req.dst, req.overwriteDest)
    return nn.Rename2ResponseProto()


@rpc("delete", nn.DeleteRequestProto)
def _delete(self: NameNode, caller: Any, req: nn.DeleteRequestProto) -> Any:
    return nn.DeleteResponseProto(result=self.ns.delete(caller, req.src, req.recursive))


@rpc("setPermission", nn.SetPermissionRequestProto)
def _set_permission(self: NameNode, caller: Any, req: nn.SetPermissionRequestProto) -> Any:
    self.ns.set_permission(caller, req.src, req.permission.perm)
    return nn.SetPermissionResponseProto()


@rpc("setOwner", nn.SetOwnerRequestProto)
def _set_owner(self: NameNode, caller: Any, req: nn.SetOwnerRequestProto) -> Any:
    self.ns.set_owner(caller, req.src,
                      req.username if req.HasField("username") else None,
                      req.groupname if req.HasField("groupname") else None)
    return nn.SetOwnerResponseProto()


@rpc("setTimes", nn.SetTimesRequestProto)
def _set_times(self: NameNode, caller: Any, req: nn.SetTimesRequestProto) -> Any:
    self.ns.set_times(caller, req.src, _signed(req.mtime), _signed(req.atime))
    return nn.SetTimesResponseProto()


@rpc("setReplication", nn.SetReplicationRequestProto)
def _set_replication(self: NameNode, caller: Any, req: nn.SetReplicationRequestProto) -> Any:
    return nn.SetReplicationResponseProto(
        result=self.ns.set_replication(caller, req.src, req.replication))


@rpc("getContentSummary", nn.GetContentSummaryRequestProto)
def _get_content_summary(self: NameNode, caller: Any,
                         req: nn.GetContentSummaryRequestProto) -> Any:
    s = self.ns.content_summary(caller, req.path)
    resp = nn.GetContentSummaryResponseProto()
    cs = resp.summary
    cs.length = s["length"]
    cs.fileCount = s["fileCount"]
    cs.directoryCount = s["directoryCount"]
    cs.quota = _u64(s["quota"])
    cs.spaceConsumed = s["spaceConsumed"]
    cs.spaceQuota = _u64(s["spaceQuota"])
    return resp


@rpc("getFsStats", nn.GetFsStatusRequestProto)
def _get_fs_stats(self: NameNode, caller: Any, req: Any) -> Any:
    s = self.ns.fs_stats()
    return nn.GetFsStatsResponseProto(
        capacity=s["capacity"], used=s["used"], remaining=s["remaining"],
        under_replicated=s["under_replicated"], corrupt_blocks=s["corrupt_blocks"],
        missing_blocks=s["missing_blocks"], missing_repl_one_blocks=0, blocks_in_future=0,
        pending_deletion_blocks=0)


@rpc("setQuota", nn.SetQuotaRequestProto)
def _set_quota(self: NameNode, caller: Any, req: nn.SetQuotaRequestProto) -> Any:
    if req.HasField("storageType"):
        raise errors.UnsupportedOperation("minidfs does not support storage type quotas")

    def convert(v: int) -> int:
        return QUOTA_DONT_SET if v == QUOTA_DONT_SET else _signed(v)

    self.ns.set_quota(caller, req.path, convert(req.namespaceQuota),
                      convert(req.storagespaceQuota))
    return nn.SetQuotaResponseProto()


@rpc("getPreferredBlockSize", nn.GetPreferredBlockSizeRequestProto)
def _get_preferred_block_size(self: NameNode, caller: Any,
                              req: nn.GetPreferredBlockSizeRequestProto) -> Any:
    with self.ns.lock:
        res = self.ns.get_info(caller, req.filename)
        node = res.last if res else None
        if not isinstance(node, INodeFile):
            raise errors.FileNotFound(f"File does not exist: {req.filename}")
        return nn.GetPreferredBlockSizeResponseProto(bsize=node.block_size)


@rpc("isFileClosed", nn.IsFileClosedRequestProto)
def _is_file_closed(self: NameNode, caller: Any, req: nn.IsFileClosedRequestProto) -> Any:
    with self.ns.lock:
        res = self.ns.get_info(caller, req.src)
        node = res.last if res else None
        if not isinstance(node, INodeFile):
            raise errors.FileNotFound(f"File does not exist: {req.src}")
        return nn.IsFileClosedResponseProto(result=not node.under_construction)


@rpc("msync", nn.MsyncRequestProto)
def _msync(self: NameNode, caller: Any, req: Any) -> Any:
    return nn.MsyncResponseProto()


@rpc("getAclStatus", nn.GetAclStatusRequestProto)
def _get_acl_status(self: NameNode, caller: Any, req: nn.GetAclStatusRequestProto) -> Any:
    with self.ns.lock:
        node = self.ns.acl_status(caller, req.src)
        resp = nn.GetAclStatusResponseProto()
        r = resp.result
        r.owner = node.owner
        r.group = node.group
        r.sticky = bool(node.perm & 0o1000)
        r.permission.perm = node.perm
        return resp


@rpc("allowSnapshot", nn.AllowSnapshotRequestProto)
def _allow_snapshot(self: NameNode, caller: Any, req: nn.AllowSnapshotRequestProto) -> Any:
    self.ns.allow_snapshot(caller, req.snapshotRoot)
    return nn.AllowSnapshotResponseProto()


@rpc("disallowSnapshot", nn.DisallowSnapshotRequestProto)
def _disallow_snapshot(self: NameNode, caller: Any,
                       req: nn.DisallowSnapshotRequestProto) -> Any:
    self.ns.disallow_snapshot(caller, req.snapshotRoot)
    return nn.DisallowSnapshotResponseProto()


@rpc("createSnapshot", nn.CreateSnapshotRequestProto)
def _create_snapshot(self: NameNode, caller: Any, req: nn.CreateSnapshotRequestProto) -> Any:
    name = req.snapshotName if req.HasField("snapshotName") else None
    return nn.CreateSnapshotResponseProto(
        snapshotPath=self.ns.create_snapshot(caller, req.snapshotRoot, name))


@rpc("deleteSnapshot", nn.DeleteSnapshotRequestProto)
def _delete_snapshot(self: NameNode, caller: Any, req: nn.DeleteSnapshotRequestProto) -> Any:
    self.ns.delete_snapshot(caller, req.snapshotRoot, req.snapshotName)
    return nn.DeleteSnapshotResponseProto()


@rpc("renameSnapshot", nn.RenameSnapshotRequestProto)
def _rename_snapshot(self: NameNode, caller: Any, req: nn.RenameSnapshotRequestProto) -> Any:
    self.ns.rename_snapshot(caller, req.snapshotRoot, req.snapshotOldName,
                            req.snapshotNewName)
    return nn.RenameSnapshotResponseProto()


@rpc("getSnapshottableDirListing", nn.GetSnapshottableDirListingRequestProto)
def _get_snapshottable_dir_listing(self: NameNode, caller: Any, req: Any) -> Any:
    resp = nn.GetSnapshottableDirListingResponseProto()
    with self.ns.lock:
        dirs = self.ns.snapshottable_dirs(caller)
        if not dirs:
            return resp
        listing = resp.snapshottableDirList
        for d in dirs:
            entry = listing.snapshottableDirListing.add()
            self._status(d, d.name.encode(), entry.dirStatus)
            entry.snapshot_quota = 65536
            entry.snapshot_number = len(d.snapshots)
            entry.parent_fullpath = (d.parent.path() if d.parent else "").encode()
    return resp


# -- Centralized Cache Management (rules in minidfs.caching) ----------------------------
def _pool_info(p: nn.CachePoolInfoProto) -> PoolInfo:
    """PBHelperClient.convert(CachePoolInfoProto): an absent field stays unset."""
    def opt(name: str) -> Any:
        return getattr(p, name) if p.HasField(name) else None  # type: ignore[arg-type]

    return PoolInfo(name=p.poolName, owner=opt("ownerName"), group=opt("groupName"),
                    mode=opt("mode"), limit=opt("limit"),
                    max_relative_expiry=opt("maxRelativeExpiry"),
                    default_replication=opt("defaultReplication"))


def _directive_info(p: nn.CacheDirectiveInfoProto) -> DirectiveInfo:
    def opt(name: str) -> Any:
        return getattr(p, name) if p.HasField(name) else None  # type: ignore[arg-type]

    expiration = (p.expiration.millis, p.expiration.isRelative) \
        if p.HasField("expiration") else None
    return DirectiveInfo(id=opt("id"), path=opt("path"), replication=opt("replication"),
                         pool=opt("pool"), expiration=expiration)


@rpc("addCachePool", nn.AddCachePoolRequestProto)
def _add_cache_pool(self: NameNode, caller: Any, req: nn.AddCachePoolRequestProto) -> Any:
    self.ns.cache.add_pool(caller, _pool_info(req.info))
    return nn.AddCachePoolResponseProto()


# ModifyCachePoolRequestProto{1 info} and its empty response are, on the wire, the
# AddCachePool pair, which our proto subset declares: parse and answer with those.
@rpc("modifyCachePool", nn.AddCachePoolRequestProto)
def _modify_cache_pool(self: NameNode, caller: Any, req: nn.AddCachePoolRequestProto) -> Any:
    self.ns.cache.modify_pool(caller, _pool_info(req.info))
    return nn.AddCachePoolResponseProto()


@rpc("removeCachePool", nn.RemoveCachePoolRequestProto)
def _remove_cache_pool(self: NameNode, caller: Any,
                       req: nn.RemoveCachePoolRequestProto) -> Any:
    self.ns.cache.remove_pool(caller, req.poolName)
    return nn.RemoveCachePoolResponseProto()


def _pool_stats(st: PoolStats, out: nn.CachePoolStatsProto) -> None:
    out.bytesNeeded = st.bytes_needed
    out.bytesCached = st.bytes_cached
    out.bytesOverlimit = st.bytes_overlimit
    out.filesNeeded = st.files_needed
    out.filesCached = st.files_cached


@rpc("listCachePools", nn.ListCachePoolsRequestProto)
def _list_cache_pools(self: NameNode, caller: Any, req: nn.ListCachePoolsRequestProto) -> Any:
    resp = nn.ListCachePoolsResponseProto()
    entries, resp.hasMore = self.ns.cache.list_pools(caller, req.prevPoolName)
    for pool, full, stats in entries:
        e = resp.entries.add()
        e.info.poolName = pool.name
        if full:  # CachePool.getInfo(true); a caller without READ sees the name only
            e.info.ownerName = pool.owner
            e.info.groupName = pool.group
            e.info.mode = pool.mode
            e.info.limit = pool.limit
            e.info.maxRelativeExpiry = pool.max_relative_expiry
            e.info.defaultReplication = pool.default_replication
        _pool_stats(stats, e.stats)
    return resp


@rpc("addCacheDirective", nn.AddCacheDirectiveRequestProto)
def _add_cache_directive(self: NameNode, caller: Any,
                         req: nn.AddCacheDirectiveRequestProto) -> Any:
    d = self.ns.cache.add_directive(caller, _directive_info(req.info), req.cacheFlags)
    return nn.AddCacheDirectiveResponseProto(id=d.id)


@rpc("modifyCacheDirective", nn.ModifyCacheDirectiveRequestProto)
def _modify_cache_directive(self: NameNode, caller: Any,
                            req: nn.ModifyCacheDirectiveRequestProto) -> Any:
    self.ns.cache.modify_directive(caller, _directive_info(req.info), req.cacheFlags)
    return nn.ModifyCacheDirectiveResponseProto()


@rpc("removeCacheDirective", nn.RemoveCacheDirectiveRequestProto)
def _remove_cache_directive(self: NameNode, caller: Any,
                            req: nn.RemoveCacheDirectiveRequestProto) -> Any:
    self.ns.cache.remove_directive(caller, req.id)
    return nn.RemoveCacheDirectiveResponseProto()


def _directive_entry(d: CacheDirective, out: nn.CacheDirectiveInfoProto) -> None:
    """CacheDirective.toInfo: every field set, the expiry absolute."""
    out.id = d.id
    out.path = d.path
    out.replication = d.replication
    out.pool = d.pool
    out.expiration.millis = d.expiry
    out.expiration.isRelative = False


@rpc("listCacheDirectives", nn.ListCacheDirectivesRequestProto)
def _list_cache_directives(self: NameNode, caller: Any,
                           req: nn.ListCacheDirectivesRequestProto) -> Any:
    resp = nn.ListCacheDirectivesResponseProto()
    entries, resp.hasMore = self.ns.cache.list_directives(caller, req.prevId,
                                                          _directive_info(req.filter))
    for d, st in entries:
        e = resp.elements.add()
        _directive_entry(d, e.info)
        s = e.stats
        s.bytesNeeded = st.bytes_needed
        s.bytesCached = st.bytes_cached
        s.filesNeeded = st.files_needed
        s.filesCached = st.files_cached
        s.hasExpired = st.has_expired
    return resp
