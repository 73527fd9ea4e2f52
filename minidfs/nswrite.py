"""The write path of the namesystem: blocks, leases, recovery, DataNode callbacks.

Kept apart from the namespace operations because it is where the NameNode
and the DataNodes meet: block allocation and commit, lease recovery (which
calls into DataNodes to finalize replicas), the in-process "block received"
and "block report" messages, and the re-replication planner.

Mixed into :class:`minidfs.namesystem.Namesystem`; same lock and journal.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from minidfs import errors
from minidfs import permissions as perms
from minidfs.blocks import BlockEntry, DatanodeDescriptor, LocatedBlock
from minidfs.inodes import Block, INodeFile, now_ms
from minidfs.permissions import WRITE, Caller

log = logging.getLogger("minidfs.namesystem")


class WriteOps:
    """addBlock, complete, fsync, append, abandon, pipelines, leases, block reports."""

    # ===========================================================================
    # writing files
    # ===========================================================================
    def add_block(self, path: str, client: str, previous: tuple[int, int] | None,
                  file_id: int, exclude: set[int]) -> tuple[INodeFile, LocatedBlock]:
        """Commit ``previous`` (block id, numBytes) and allocate the next block."""
        with self.lock:
            f = self._file_for_write(path, client, file_id)
            last = f.blocks[-1] if f.blocks else None
            if previous is not None:
                prev_id, prev_len = previous
                if last is None or last.id != prev_id:
                    # a retried addBlock whose answer got lost: hand back the same block
                    if len(f.blocks) >= 2 and f.blocks[-2].id == prev_id and \
                            not f.blocks[-1].complete:
                        return f, self._located_last(f)
                    raise errors.RemoteError(
                        f"addBlock: previous block {prev_id} is not the last block of {path}")
                if not last.complete or last.num_bytes != prev_len:
                    self._commit(f, last, prev_len)
            elif last is not None and not last.complete:
                visible = self._visible_length(last)
                if visible == 0:
                    return f, self._located_last(f)  # retry of an allocation never written
                self._commit(f, last, visible)
            repl = f.replication
            self._check_quota(f.parent, 0, f.block_size * repl)
            targets = self.bm.choose_targets(repl, exclude)
            if not targets:
                raise errors.RemoteError(
                    f"File {path} could only be written to 0 of the 1 minReplication nodes. "
                    f"There are {len(self.bm.live())} datanode(s) running and "
                    f"{len(exclude)} node(s) are excluded in this operation.")
            block_id = self.next_block_id
            gs = self.next_gs
            self._log({"op": "add_block", "file": f.id, "block": block_id, "gs": gs})
            for dn in targets:
                self.bm.add_replica(block_id, dn.index)
            return f, self._located_last(f)

    def _located_last(self, f: INodeFile) -> LocatedBlock:
        b = f.blocks[-1]
        offset = sum(x.num_bytes for x in f.blocks[:-1])
        return LocatedBlock(b, offset, b.num_bytes, self.bm.live_locations(b.id))

    def _commit(self, f: INodeFile, b: Block, length: int) -> None:
        self._log({"op": "commit", "file": f.id, "block": b.id, "len": length})

    def _ap_add_block(self, r: dict[str, Any]) -> None:
        f = self.inodes[r["file"]]
        assert isinstance(f, INodeFile)
        before = f.space()
        b = Block(r["block"], r["gs"], 0, False)
        f.blocks.append(b)
        self.bm.blocks[b.id] = BlockEntry(b, f)
        self._add_usage(f.parent, 0, f.space() - before)
        self._bump_ids(block_id=b.id, gs=b.gs)

    def _ap_commit(self, r: dict[str, Any]) -> None:
        self._set_block_length(r["block"], r["len"], complete=True)
        self.durable_len.pop(r["block"], None)

    def _ap_durable(self, r: dict[str, Any]) -> None:
        """A DataNode made bytes of a block under construction durable (restart keeps them)."""
        entry = self.bm.blocks.get(r["block"])
        if entry is not None and entry.file is not None and not entry.block.complete:
            self.durable_len[r["block"]] = max(self.durable_len.get(r["block"], 0), r["len"])

    def _ap_block_len(self, r: dict[str, Any]) -> None:
        self._set_block_length(r["block"], r["len"], complete=False)

    def _set_block_length(self, block_id: int, length: int, *, complete: bool) -> None:
        """A block's new length (and, on commit, completion), charged to the quota."""
        entry = self.bm.blocks.get(block_id)
        if entry is None or entry.file is None:
            return
        f = entry.file
        before = f.space()
        entry.block.num_bytes = length
        if complete:
            entry.block.complete = True
        self._add_usage(f.parent, 0, f.space() - before)

    def complete(self, path: str, client: str, last: tuple[int, int] | None,
                 file_id: int) -> bool:
        with self.lock:
            node = self.inodes.get(file_id) if file_id else self._resolve(path).last
            if isinstance(node, INodeFile) and node.client is None and \
                    (last is None or (node.blocks and node.blocks[-1].id == last[0])):
                return True  # a retried complete of a file that is already closed
            f = self._file_for_write(path, client, file_id)
            if f.blocks:
                b = f.blocks[-1]
                if last is not None and last[0] == b.id:
                    if not b.complete or b.num_bytes != last[1]:
                        self._commit(f, b, last[1])
                elif not b.complete:
                    self._commit(f, b, self._visible_length(b))
            self._log({"op": "close", "id": f.id, "mtime": now_ms()})
            return True

    def _ap_close(self, r: dict[str, Any]) -> None:
        f = self.inodes[r["id"]]
        assert isinstance(f, INodeFile)
        before = f.space()
        for b in f.blocks:
            b.complete = True
            self.durable_len.pop(b.id, None)
        self._lease_remove(f.client, f.id)
        f.client = None
        f.mtime = r["mtime"]
        self.replication_dirty = True
        self._add_usage(f.parent, 0, f.space() - before)

    def fsync(self, path: str, client: str, last_block_length: int, file_id: int) -> None:
        with self.lock:
            f = self._file_for_write(path, client, file_id)
            if last_block_length >= 0 and f.blocks and not f.blocks[-1].complete:
                b = f.blocks[-1]
                if last_block_length != b.num_bytes:
                    self._log({"op": "block_len", "block": b.id, "len": last_block_length})

    def renew_lease(self, client: str) -> None:
        with self.lock:
            lease = self.leases.get(client)
            if lease is not None:
                lease.renewed = time.monotonic()

    def append(self, caller: Caller, path: str, client: str,
               new_block: bool) -> tuple[INodeFile, LocatedBlock | None]:
        with self.lock:
            f = self._closed_file_for_write(
                caller, path, client, "APPEND_FILE",
                f"Failed to append to non-file {path}: is a directory")
            last = f.blocks[-1] if f.blocks else None
            reuse = last is not None and not new_block and last.num_bytes < f.block_size
            if reuse:
                assert last is not None
                self._check_quota(f.parent, 0, (f.block_size - last.num_bytes) * f.replication)
            self._log({"op": "reopen", "id": f.id, "client": client, "uc_last": reuse})
            located = None
            if reuse:
                located = self._located_last(f)
            return f, located

    def _closed_file_for_write(self, caller: Caller, path: str, client: str, op: str,
                               not_a_file: str) -> INodeFile:
        """The file at ``path`` for append/truncate: a file, writable by ``caller``, and
        not open for writing by another client (a lease conflict otherwise).  Under
        ``self.lock``."""
        f = self._existing(caller, path, write=True).deepest
        if not isinstance(f, INodeFile):
            raise errors.FileNotFound(not_a_file)
        perms.check(caller, f, WRITE, path)
        if f.client is not None:
            self._lease_conflict(f, client, op, path)
        return f

    def _ap_reopen(self, r: dict[str, Any]) -> None:
        f = self.inodes[r["id"]]
        assert isinstance(f, INodeFile)
        before = f.space()
        f.client = r["client"]
        if r["uc_last"] and f.blocks:
            f.blocks[-1].complete = False
        self._lease_add(f.client, f.id)  # type: ignore[arg-type]
        self._add_usage(f.parent, 0, f.space() - before)

    def truncate(self, caller: Caller, path: str, new_length: int, client: str) -> bool:
        """Cut a closed file to ``new_length``; always finishes at once (returns True).

        Mid-block truncation is copy-on-truncate: the kept prefix of the last block
        becomes a *new* block, so a snapshot still reading the old one is unaffected.
        """
        with self.lock:
            f = self._closed_file_for_write(caller, path, client, "TRUNCATE_FILE",
                                            f"Cannot truncate {path}: not a file")
            length = self.file_length(f)
            if new_length > length:
                raise errors.IllegalArgument(
                    f"Cannot truncate to a larger file size. Current size: {length}, "
                    f"truncate size: {new_length}.")
            if new_length == length:
                return True
            keep = 0
            pos = 0
            partial: tuple[Block, int] | None = None
            for b in f.blocks:
                if pos + b.num_bytes <= new_length:
                    keep += 1
                    pos += b.num_bytes
                    continue
                if new_length > pos:
                    partial = (b, new_length - pos)
                break
            rec: dict[str, Any] = {"op": "truncate", "id": f.id, "keep": keep, "mtime": now_ms()}
            made: list[DatanodeDescriptor] = []
            if partial is not None:
                old, k = partial
                new_id, gs = self.next_block_id, self.next_gs
                made = [dn for dn in self.bm.live_locations(old.id)
                        if dn.handle is not None and dn.handle.copy_prefix(old.id, new_id, k)]
                if not made:
                    raise errors.RemoteError(f"Cannot truncate {path}: no live replica of "
                                             f"block {old.id}")
                rec["new_block"] = [new_id, gs, k]
            self._log(rec)
            for dn in made:
                self.bm.add_replica(rec["new_block"][0], dn.index)
            return True

    def _ap_truncate(self, r: dict[str, Any]) -> None:
        f = self.inodes[r["id"]]
        assert isinstance(f, INodeFile)
        before = f.space()
        dropped = f.blocks[r["keep"]:]
        f.blocks = f.blocks[:r["keep"]]
        for b in dropped:
            self._release_block(b.id)
        if "new_block" in r:
            block_id, gs, length = r["new_block"]
            nb = Block(block_id, gs, length, True)
            f.blocks.append(nb)
            self.bm.blocks[block_id] = BlockEntry(nb, f)
            self._bump_ids(block_id=block_id, gs=gs)
        f.mtime = r["mtime"]
        self._add_usage(f.parent, 0, f.space() - before)

    def abandon_block(self, path: str, client: str, block_id: int, file_id: int) -> None:
        with self.lock:
            f = self._file_for_write(path, client, file_id)
            if not f.blocks or f.blocks[-1].id != block_id:
                return
            self._log({"op": "abandon", "file": f.id, "block": block_id})

    def _ap_abandon(self, r: dict[str, Any]) -> None:
        f = self.inodes[r["file"]]
        assert isinstance(f, INodeFile)
        before = f.space()
        if f.blocks and f.blocks[-1].id == r["block"]:
            f.blocks.pop()
            self._release_block(r["block"])
        self._add_usage(f.parent, 0, f.space() - before)

    def update_block_for_pipeline(self, client: str, block_id: int) -> LocatedBlock:
        with self.lock:
            entry = self.bm.blocks.get(block_id)
            if entry is None or entry.file is None:
                raise errors.RemoteError(f"updateBlockForPipeline: unknown block {block_id}")
            f = entry.file
            if f.client != client:
                raise errors.LeaseExpired(f"Client {client} does not hold lease on {f.path()}")
            gs = self.next_gs
            self._log({"op": "gs", "block": block_id, "gs": gs})
            b = entry.block
            offset = 0
            for x in f.blocks:
                if x is b:
                    break
                offset += x.num_bytes
            return LocatedBlock(b, offset, b.num_bytes, self.bm.live_locations(block_id))

    def _ap_gs(self, r: dict[str, Any]) -> None:
        entry = self.bm.blocks.get(r["block"])
        if entry is not None:
            entry.block.gs = r["gs"]
        self._bump_ids(gs=r["gs"])

    def update_pipeline(self, client: str, old_id: int, new_gs: int, new_len: int,
                        nodes: list[DatanodeDescriptor]) -> None:
        with self.lock:
            entry = self.bm.blocks.get(old_id)
            if entry is None or entry.file is None or entry.file.client != client:
                raise errors.LeaseExpired(f"updatePipeline: {client} does not hold block "
                                          f"{old_id}")
            if entry.block.gs != new_gs:
                self._log({"op": "gs", "block": old_id, "gs": new_gs})
            if new_len > entry.block.num_bytes and not entry.block.complete:
                self._log({"op": "block_len", "block": old_id, "len": new_len})
            if nodes:
                self.bm.replicas[old_id] = [d.index for d in nodes]

    def additional_datanodes(self, path: str, client: str, file_id: int,
                             existing: list[DatanodeDescriptor], exclude: set[int],
                             count: int) -> list[DatanodeDescriptor]:
        """getAdditionalDatanode: the writer's pipeline plus up to ``count`` live DataNodes
        in neither it nor ``exclude``.

        With none to spare HDFS still answers, with the existing nodes only (its placement
        policy returns the chosen nodes, ``BlockManager.chooseTarget4AdditionalDatanode``),
        and the client decides: Java's DEFAULT replace-datanode-on-failure policy then fails
        the write ("Failed to replace a bad datanode on the existing pipeline due to no more
        good datanodes being available to try"); best-effort clients carry on.
        """
        with self.lock:
            self._file_for_write(path, client, file_id)
            taken = {d.index for d in existing} | set(exclude)
            extra = [d for d in self.bm.live() if d.index not in taken][:max(0, count)]
            return [*existing, *extra]

    def recover_lease(self, caller: Caller, path: str, client: str) -> bool:
        with self.lock:
            res = self._existing(caller, path, write=True)
            f = res.deepest
            if not isinstance(f, INodeFile):
                raise errors.FileNotFound(f"Path is not a file: {path}")
            perms.check(caller, f, WRITE, path)
            if f.client is None:
                return True
            self._recover_file(f)
            return True

    def _recover_file(self, f: INodeFile, durable_only: bool = False) -> None:
        """Close a file whose writer is gone, finalizing the last block's replicas.

        At runtime the last block keeps what its DataNodes acknowledged (HDFS
        block recovery).  After a restart (``durable_only``) it keeps only the
        length the journal recorded as durable (hsync/fsync/finalize): bytes
        that were merely in flight when the process died are never claimed.
        """
        if f.blocks and not f.blocks[-1].complete:
            b = f.blocks[-1]
            holders = self.bm.live_locations(b.id)
            lengths = [dn.handle.visible_length(b.id) for dn in holders if dn.handle]
            known = [n for n in lengths if n is not None]
            if durable_only:
                durable = max(b.num_bytes, self.durable_len.get(b.id, 0))
                length = min(durable, max(known)) if known else durable
            else:
                length = max(known) if known else b.num_bytes
            if length == 0:
                self._log({"op": "abandon", "file": f.id, "block": b.id})
            else:
                for dn in holders:
                    if dn.handle is not None:
                        ok = dn.handle.recover_replica(b.id, length)
                        if not ok:
                            self.bm.remove_replica(b.id, dn.index)
                self._commit(f, b, length)
        self._log({"op": "close", "id": f.id, "mtime": now_ms()})

    def check_leases(self) -> int:
        """Recover files whose writer stopped renewing past the hard limit."""
        recovered = 0
        with self.lock:
            now = time.monotonic()
            for holder, lease in list(self.leases.items()):
                if now - lease.renewed <= self.config.lease_hard_limit:
                    continue
                for file_id in list(lease.files):
                    f = self.inodes.get(file_id)
                    if isinstance(f, INodeFile) and f.client == holder:
                        log.info("lease hard limit expired for %s on %s", holder, f.path())
                        self._recover_file(f)
                        recovered += 1
                self.leases.pop(holder, None)
        return recovered

    def recover_all_under_construction(self) -> int:
        """At startup: nobody can still be writing, so close every UC file."""
        with self.lock:
            files = [n for n in self.inodes.values()
                     if isinstance(n, INodeFile) and n.client is not None]
            for f in files:
                log.info("recovering under-construction file %s", f.path())
                self._recover_file(f, durable_only=True)
            return len(files)

    # ===========================================================================
    # DataNode callbacks (in-process "block received" / "block report")
    # ===========================================================================
    def replica_finalized(self, dn_index: int, block_id: int, length: int) -> bool:
        """A DataNode finalized a replica (data is durable).  False = unknown block."""
        with self.lock:
            entry = self.bm.blocks.get(block_id)
            if entry is None:
                return False
            self.bm.add_replica(block_id, dn_index)
            b = entry.block
            if entry.file is not None and not b.complete and \
                    length > max(b.num_bytes, self.durable_len.get(block_id, 0)):
                self._log({"op": "durable", "block": block_id, "len": length})
            return True

    def replica_synced(self, dn_index: int, block_id: int, length: int) -> None:
        """hsync reached the disk of a DataNode: remember the durable length."""
        with self.lock:
            entry = self.bm.blocks.get(block_id)
            if entry is None or entry.file is None or entry.block.complete:
                return
            if length > max(entry.block.num_bytes, self.durable_len.get(block_id, 0)):
                self._log({"op": "durable", "block": block_id, "len": length})

    def replica_receiving(self, dn_index: int, block_id: int) -> bool:
        with self.lock:
            if block_id not in self.bm.blocks:
                return False
            self.bm.add_replica(block_id, dn_index)
            return True

    def block_report(self, dn_index: int,
                     replicas: list[tuple[int, int, bool]]) -> dict[int, int | None]:
        """Register a DataNode's replicas.  Returns actions: block id → truncate length, or
        None = delete (unknown, or shorter than the committed length, i.e. corrupt)."""
        actions: dict[int, int | None] = {}
        with self.lock:
            for block_id, length, finalized in replicas:
                entry = self.bm.blocks.get(block_id)
                if entry is None:
                    actions[block_id] = None
                    continue
                b = entry.block
                complete = b.complete or entry.file is None or entry.file.client is None
                if complete:
                    if length < b.num_bytes:
                        log.warning("replica of block %d on dn%d is short (%d < %d): dropped",
                                    block_id, dn_index, length, b.num_bytes)
                        actions[block_id] = None
                        continue
                    if length > b.num_bytes or not finalized:
                        actions[block_id] = b.num_bytes
                self.bm.add_replica(block_id, dn_index)
            self.replication_dirty = True  # a DataNode (re)joined: a new copy target
        return actions

    def replica_failed(self, dn_index: int, block_id: int) -> None:
        """A pipeline dropped this DataNode's replica mid-write."""
        with self.lock:
            self.bm.remove_replica(block_id, dn_index)
            self.replication_dirty = True

    def heartbeat(self, dn_index: int) -> set[int]:
        """A DataNode's heartbeat; the answer is the replicas it is to delete (HDFS's
        DNA_INVALIDATE command), minus any the namespace knows again meanwhile."""
        with self.lock:
            return {b for b in self.bm.take_invalidations(dn_index)
                    if dn_index not in self.bm.replicas.get(b, ())}

    def datanode_down(self, dn_index: int) -> None:
        with self.lock:
            self.bm.datanodes[dn_index].alive = False
            self.replication_dirty = True

    # ===========================================================================
    # replication monitor
    # ===========================================================================
    def replication_work(self) -> list[tuple[int, int, int, int]]:
        """(block, length, source dn, target dn) copies that would restore replication."""
        work = []
        with self.lock:
            if not self.replication_dirty:
                return []
            self.replication_dirty = False
            live = self.bm.live()
            if len(live) < 2:
                return []
            for block_id, entry in self.bm.blocks.items():
                f = entry.file
                if f is None or not entry.block.complete or entry.block.num_bytes == 0:
                    continue
                holders = self.bm.live_locations(block_id)
                want = min(f.replication, len(live))
                if not holders or len(holders) >= want:
                    continue
                have = {d.index for d in self.bm.locations(block_id)}
                for dn in live:
                    if len(holders) >= want:
                        break
                    if dn.index not in have:
                        work.append((block_id, entry.block.num_bytes, holders[0].index,
                                     dn.index))
                        holders.append(dn)
        return work
