"""The namespace: inode tree, blocks, leases, quotas, snapshots, permissions.

Every mutation has two halves:

* a *checked* public method (``mkdirs``, ``create``, ...) that validates the
  request (existence, permissions, quotas, leases) and builds a journal
  record, and
* an *unchecked* ``_ap_<op>`` function that applies the record.

The live path applies and then journals the record; restart replays the
journal through the same ``_ap_`` functions.  So replay cannot disagree with
what clients saw, and a check can never accidentally run during replay.

The write path (blocks, leases, DataNode callbacks) lives in
:mod:`minidfs.nswrite` and snapshots in :mod:`minidfs.nssnapshot`, mixed into
:class:`Namesystem`.

One re-entrant lock guards everything here.  Callers (RPC handlers) hold it
only while computing, never during socket I/O; DataNodes call in without
holding any lock of their own, so lock order is always namesystem → DataNode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from minidfs import errors
from minidfs import permissions as perms
from minidfs.blocks import BlockEntry, BlockManager, LocatedBlock, LocatedFile
from minidfs.caching import CacheManager
from minidfs.editlog import Journal
from minidfs.inodes import (
    BLOCK_ID_START,
    GENSTAMP_START,
    ROOT_ID,
    SNAPSHOT_DIR,
    Block,
    INode,
    INodeDirectory,
    INodeFile,
    Snapshot,
    inode_from_json,
    now_ms,
    split_path,
    subtree_usage,
    walk,
)
from minidfs.nssnapshot import SnapshotOps
from minidfs.nswrite import WriteOps
from minidfs.permissions import EXECUTE, READ, WRITE, Caller

log = logging.getLogger(__name__)

CREATE_FLAG_CREATE = 0x01
CREATE_FLAG_OVERWRITE = 0x02
CREATE_FLAG_APPEND = 0x04
CREATE_FLAG_NEW_BLOCK = 0x20

BYTES_PER_CHECKSUM = 512
CHECKPOINT_EVERY = 20000  # journal records between automatic checkpoints


@dataclass
class Lease:
    holder: str
    renewed: float = field(default_factory=time.monotonic)
    files: set[int] = field(default_factory=set)


@dataclass
class Resolved:
    """Result of walking a path.

    ``inodes`` starts at the root and holds every component found (a
    ``.snapshot/<name>`` pair contributes the snapshot's frozen root).
    ``complete`` means the whole path exists; ``dotsnapshot`` is set when the
    path names the virtual ``<dir>/.snapshot`` directory itself.
    """

    path: str
    parts: list[str]
    inodes: list[INode]
    complete: bool
    blocked: bool = False          #: an ancestor is a file
    in_snapshot: bool = False
    dotsnapshot: INodeDirectory | None = None
    remaining: int = 0             #: components not found

    @property
    def last(self) -> INode | None:
        return self.inodes[-1] if self.complete and self.dotsnapshot is None else None

    @property
    def deepest(self) -> INode:
        return self.inodes[-1]


def _check_not_in_snapshot(res: Resolved, path: str) -> None:
    """Mutations may touch neither a snapshot's contents nor a ``.snapshot`` directory."""
    if res.in_snapshot or res.dotsnapshot is not None:
        raise errors.SnapshotAccessControl(
            f"Modification on a read-only snapshot is disallowed: {path}")


@dataclass
class NamesystemConfig:
    block_size: int = 128 * 1024 * 1024
    replication: int = 3
    #: dfs.namenode.replication.min / dfs.replication.max: the only bounds HDFS puts on
    #: a requested replication factor (it never caps it at the number of DataNodes)
    min_replication: int = 1
    max_replication: int = 512
    superuser: str = "hdfs"
    supergroup: str = "supergroup"
    groups: dict[str, list[str]] = field(default_factory=dict)
    listing_limit: int = 1000
    lease_soft_limit: float = 60.0
    lease_hard_limit: float = 20 * 60.0
    trash_interval: int = 0
    capacity: int | None = None


class Namesystem(SnapshotOps, WriteOps):
    def __init__(self, config: NamesystemConfig, journal: Journal | None = None,
                 block_pool_id: str = "BP-minidfs"):
        self.config = config
        self.lock = threading.RLock()
        self.journal = journal
        self.block_pool_id = block_pool_id
        self.bm = BlockManager()
        self.inodes: dict[int, INode] = {}
        self.leases: dict[str, Lease] = {}
        self.next_inode_id = ROOT_ID + 1
        self.next_block_id = BLOCK_ID_START
        self.next_gs = GENSTAMP_START
        self.root = INodeDirectory(ROOT_ID, "", 0o755, config.superuser, config.supergroup,
                                   now_ms())
        self.inodes[ROOT_ID] = self.root
        self._replaying = False
        #: block id -> bytes its DataNodes made durable (hsync packet, finalize) while it
        #: is under construction: what a restart keeps.  Not the length clients see: HDFS's
        #: NameNode learns a block's length only from its writer (fsync, commit).
        self.durable_len: dict[int, int] = {}
        #: set when replica counts may have dropped below a file's replication; the
        #: monitor scans the block map only then, not every tick
        self.replication_dirty = True
        self._appliers: dict[str, Callable[[dict[str, Any]], None]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_ap_")
        }
        #: cache pools and directives: same lock, journal and image as the namespace
        self.cache = CacheManager(self)
        self._appliers.update(self.cache.appliers())

    # ===========================================================================
    # persistence
    # ===========================================================================
    def load(self) -> int:
        """Load image + edit log.  Returns the number of replayed records."""
        if self.journal is None:
            return 0
        image, records = self.journal.load()
        with self.lock:
            if image is not None:
                self._load_image(image)
            self._replaying = True
            try:
                for rec in records:
                    self._apply(rec)
            finally:
                self._replaying = False
            self.journal.open()
            if records:
                self.checkpoint()
        return len(records)

    def _load_image(self, image: dict[str, Any]) -> None:
        root = inode_from_json(image["root"])
        assert isinstance(root, INodeDirectory)
        self.root = root
        self.inodes = {n.id: n for n in walk(root)}
        self.next_inode_id = image["next_inode_id"]
        self.next_block_id = image["next_block_id"]
        self.next_gs = image["next_gs"]
        self.durable_len = {int(k): v for k, v in image.get("durable", {}).items()}
        self.cache.load_json(image.get("cache"))
        self.bm.blocks.clear()
        dirs = []
        for node in walk(root):
            if isinstance(node, INodeFile):
                for b in node.blocks:
                    self.bm.blocks[b.id] = BlockEntry(b, node)
                if node.client is not None:
                    self._lease_add(node.client, node.id)
            elif isinstance(node, INodeDirectory):
                dirs.append(node)
        # second pass: snapshots pin blocks that live files may also own
        for node in dirs:
            if node.has_quota:
                node.ns_used, node.ds_used = subtree_usage(node)
            for snap in node.snapshots.values():
                self._pin_snapshot(snap.root)

    def image(self) -> dict[str, Any]:
        return {"version": 1, "root": self.root.to_json(), "next_inode_id": self.next_inode_id,
                "next_block_id": self.next_block_id, "next_gs": self.next_gs,
                "durable": {str(k): v for k, v in self.durable_len.items()},
                "cache": self.cache.to_json()}

    def checkpoint(self) -> None:
        with self.lock:
            if self.journal is not None:
                self.journal.checkpoint(self.image())

    def sync(self) -> None:
        """Make journaled mutations durable; call *without* holding the lock."""
        if self.journal is not None:
            self.journal.sync()

    def _log(self, rec: dict[str, Any]) -> None:
        self._apply(rec)
        if self.journal is not None and not self._replaying:
            self.journal.append(rec)
            if self.journal.records_since_checkpoint >= CHECKPOINT_EVERY:
                self.checkpoint()

    def _apply(self, rec: dict[str, Any]) -> None:
        self._appliers[rec["op"]](rec)

    # ===========================================================================
    # helpers: callers, paths, permissions, quotas
    # ===========================================================================
    def caller(self, user: str) -> Caller:
        groups = set(self.config.groups.get(user, ()))
        groups.add(user)
        is_super = user == self.config.superuser or self.config.supergroup in groups
        if user == self.config.superuser:
            groups.add(self.config.supergroup)
        return Caller(user, frozenset(groups), is_super)

    def _resolve(self, path: str) -> Resolved:
        try:
            parts = split_path(path)
        except ValueError as exc:
            raise errors.InvalidPath(str(exc)) from None
        node: INode = self.root
        inodes: list[INode] = [node]
        in_snapshot = False
        i = 0
        n = len(parts)
        while i < n:
            name = parts[i]
            if not isinstance(node, INodeDirectory):
                return Resolved(path, parts, inodes, False, blocked=True,
                                in_snapshot=in_snapshot, remaining=n - i)
            if name == SNAPSHOT_DIR and not node.frozen:
                if not node.snapshottable:
                    break
                if i == n - 1:
                    return Resolved(path, parts, inodes, True, in_snapshot=True,
                                    dotsnapshot=node)
                snap = node.snapshots.get(parts[i + 1])
                if snap is None:
                    i += 1  # ".snapshot" itself resolved; the snapshot name is missing
                    in_snapshot = True
                    break
                node = snap.root
                inodes.append(node)
                in_snapshot = True
                i += 2
                continue
            child = node.children.get(name)
            if child is None:
                break
            node = child
            inodes.append(node)
            i += 1
        return Resolved(path, parts, inodes, i == n, in_snapshot=in_snapshot, remaining=n - i)

    def _check_traverse(self, caller: Caller, res: Resolved) -> None:
        if caller.is_superuser:
            return
        ancestors = res.inodes[:-1] if (res.complete and res.dotsnapshot is None) else res.inodes
        for node in ancestors:
            if node.is_dir:
                perms.check(caller, node, EXECUTE)

    def _existing(self, caller: Caller, path: str, *, write: bool = False) -> Resolved:
        """Resolve a path that must exist; raises FileNotFound / read-only errors."""
        res = self._resolve(path)
        self._check_traverse(caller, res)
        if res.blocked:
            raise errors.FileNotFound(f"File does not exist: {path} (an ancestor is a file)")
        if not res.complete:
            raise errors.FileNotFound(f"File does not exist: {path}")
        if write and res.in_snapshot:
            raise errors.SnapshotAccessControl(
                f"Modification on a read-only snapshot is disallowed: {path}")
        return res

    def _parent_for_new(self, caller: Caller, path: str, res: Resolved) -> INodeDirectory:
        """The directory a new entry goes into (must exist unless caller creates parents)."""
        if res.in_snapshot:
            raise errors.SnapshotAccessControl(
                f"Modification on a read-only snapshot is disallowed: {path}")
        if res.blocked:
            raise errors.ParentNotDirectory(
                f"Parent path is not a directory: {res.deepest.path()}")
        if res.parts and res.parts[-1] == SNAPSHOT_DIR:
            raise errors.IllegalArgument(
                f'"{SNAPSHOT_DIR}" is a reserved name; cannot create {path}')
        parent = res.deepest
        if not isinstance(parent, INodeDirectory):
            raise errors.ParentNotDirectory(f"Parent path is not a directory: {parent.path()}")
        return parent

    def _quota_dirs(self, node: INodeDirectory | None) -> Iterator[INodeDirectory]:
        while node is not None:
            if node.has_quota and not node.frozen:
                yield node
            node = node.parent

    def _check_quota(self, where: INodeDirectory | None, d_ns: int, d_ds: int,
                     common: INodeDirectory | None = None) -> None:
        if self._replaying:
            return
        for q in self._quota_dirs(where):
            if q is common:
                break
            if d_ns > 0 and q.ns_quota >= 0 and q.ns_used + d_ns > q.ns_quota:
                raise errors.NSQuotaExceeded(
                    f"The NameSpace quota (directories and files) of directory {q.path()} is "
                    f"exceeded: quota={q.ns_quota} file count={q.ns_used + d_ns}")
            if d_ds > 0 and q.ds_quota >= 0 and q.ds_used + d_ds > q.ds_quota:
                raise errors.DSQuotaExceeded(
                    f"The DiskSpace quota of {q.path()} is exceeded: quota = {q.ds_quota} B "
                    f"but diskspace consumed = {q.ds_used + d_ds} B")

    def _add_usage(self, where: INodeDirectory | None, d_ns: int, d_ds: int) -> None:
        for q in self._quota_dirs(where):
            q.ns_used += d_ns
            q.ds_used += d_ds

    def _file_for_write(self, path: str, client: str, file_id: int = 0) -> INodeFile:
        """The UC file a writer addresses: by inode id first (survives renames), else path."""
        node = self.inodes.get(file_id) if file_id else None
        if node is None:
            res = self._resolve(path)
            node = res.last
            if node is None:
                raise errors.FileNotFound(
                    f"File does not exist: {path} [Lease.  Holder: {client}]")
        if not isinstance(node, INodeFile):
            raise errors.FileNotFound(f"Path is not a file: {path}")
        if node.client is None:
            raise errors.LeaseExpired(
                f"No lease on {path}: File is not open for writing. Holder {client} does not "
                f"have any open files.")
        if node.client != client:
            raise errors.LeaseExpired(
                f"Client {client} does not hold lease on {path}; lease holder is {node.client}")
        return node

    def _new_inode_id(self) -> int:
        return self.next_inode_id

    def _take_inode_id(self, parent: INodeDirectory, d_ns: int) -> int:
        """The id of an inode about to be added under ``parent`` (the record that adds
        it advances the counter).  HDFS allocates the id first and checks quotas when
        it adds the inode (``FSDirectory.addLastINode``): a refused inode has still
        used its id, and the next one gets the id after it."""
        new_id = self.next_inode_id
        try:
            self._check_quota(parent, d_ns, 0)
        except (errors.NSQuotaExceeded, errors.DSQuotaExceeded):
            self.next_inode_id = new_id + 1
            raise
        return new_id

    def _bump_ids(self, inode_id: int | None = None, block_id: int | None = None,
                  gs: int | None = None) -> None:
        if inode_id is not None:
            self.next_inode_id = max(self.next_inode_id, inode_id + 1)
        if block_id is not None:
            self.next_block_id = max(self.next_block_id, block_id + 1)
        if gs is not None:
            self.next_gs = max(self.next_gs, gs + 1)

    def _lease_add(self, holder: str, file_id: int) -> None:
        lease = self.leases.get(holder)
        if lease is None:
            lease = self.leases[holder] = Lease(holder)
        lease.files.add(file_id)

    def _lease_remove(self, holder: str | None, file_id: int) -> None:
        if holder is None:
            return
        lease = self.leases.get(holder)
        if lease is not None:
            lease.files.discard(file_id)
            if not lease.files:
                del self.leases[holder]

    def _lease_expired(self, holder: str, limit: float) -> bool:
        lease = self.leases.get(holder)
        return lease is None or time.monotonic() - lease.renewed > limit

    # ===========================================================================
    # read-only operations
    # ===========================================================================
    def get_info(self, caller: Caller, path: str) -> Resolved | None:
        """Resolve for getFileInfo; None when missing (not an error in HDFS)."""
        with self.lock:
            res = self._resolve(path)
            self._check_traverse(caller, res)
            if not res.complete or res.blocked:
                return None
            return res

    def list_dir(self, caller: Caller, path: str, start_after: bytes,
                 limit: int | None = None,
                 ) -> tuple[list[tuple[bytes, INode | Snapshot]], int] | None:
        """One page of a listing: ``[(name, inode-or-snapshot)], remaining``; None if missing.

        A file lists as itself with an empty name; ``<dir>/.snapshot`` lists the
        snapshots (as Snapshot objects, rendered as directories).
        """
        limit = limit or self.config.listing_limit
        with self.lock:
            res = self._resolve(path)
            self._check_traverse(caller, res)
            if not res.complete or res.blocked:
                return None
            if res.dotsnapshot is not None:
                d = res.dotsnapshot
                perms.check(caller, d, READ | EXECUTE, path)
                names = sorted(s.encode() for s in d.snapshots)
                return self._page(names, start_after, limit,
                                  lambda n: d.snapshots[n.decode()])
            node = res.deepest
            if isinstance(node, INodeFile):
                return [(b"", node)], 0
            assert isinstance(node, INodeDirectory)
            perms.check(caller, node, READ | EXECUTE, path)
            return self._page(node.sorted_names(), start_after, limit,
                              lambda n: node.children[n.decode()])

    @staticmethod
    def _page(names: list[bytes], start_after: bytes, limit: int,
              get: Callable[[bytes], Any]) -> tuple[list[tuple[bytes, Any]], int]:
        import bisect

        start = bisect.bisect_right(names, start_after) if start_after else 0
        chunk = names[start:start + limit]
        remaining = max(0, len(names) - start - len(chunk))
        return [(n, get(n)) for n in chunk], remaining

    def file_length(self, f: INodeFile) -> int:
        """getFileInfo's length, HDFS's ``computeFileSize``: every block at the length the
        NameNode has recorded, a last block under construction included at the length its
        writer last reported (fsync with a length, updatePipeline), not at what the
        DataNodes have acked since: a Java hflush/hsync without UPDATE_LENGTH leaves it."""
        return sum(b.num_bytes for b in f.blocks)

    def _visible_length(self, b: Block) -> int:
        """Bytes readers may see of an under-construction block (acked by its DataNodes)."""
        best: int | None = None
        for dn in self.bm.live_locations(b.id):
            n = dn.handle.visible_length(b.id) if dn.handle is not None else None
            if n is not None and (best is None or n > best):
                best = n
        return b.num_bytes if best is None else best

    def get_block_locations(self, caller: Caller, path: str, offset: int,
                            length: int) -> LocatedFile:
        with self.lock:
            res = self._resolve(path)
            self._check_traverse(caller, res)
            if not res.complete or res.blocked:
                # like HDFS (Java's DFSClient.open needs the exception, not an empty answer)
                raise errors.FileNotFound(f"File does not exist: {path}")
            node = res.last
            if not isinstance(node, INodeFile):
                raise errors.FileNotFound(f"Path is not a file: {path}")
            perms.check(caller, node, READ, path)
            # access times are not updated on read (like dfs.namenode.accesstime.precision=0)
            return self.locate(node, offset, length)

    def locate(self, f: INodeFile, offset: int = 0, length: int = 2**63 - 1) -> LocatedFile:
        """Blocks overlapping ``[offset, offset+length)`` plus the last block (caller locks)."""
        located: list[LocatedBlock] = []
        pos = 0
        all_blocks: list[LocatedBlock] = []
        for b in f.blocks:
            lb = LocatedBlock(b, pos, b.num_bytes, self.bm.locations(b.id))
            all_blocks.append(lb)
            pos += b.num_bytes
        # HDFS (FSDirStatAndListingOp.getBlockLocations) leaves a last block under
        # construction out of fileLength and says isLastBlockComplete=false: Java readers
        # then ask a DataNode for the replica's visible length (minidfs.dn_ipc), while
        # hdfs-native reads up to fileLength, i.e. the completed blocks only.
        uc_last = bool(f.blocks) and not f.blocks[-1].complete and not f.frozen
        file_length = pos - (f.blocks[-1].num_bytes if uc_last else 0)
        end = offset + length if length < 2**63 else 2**64
        for lb in all_blocks:
            if lb.offset + lb.length > offset and lb.offset < end:
                located.append(lb)
            elif lb.length == 0 and lb.offset >= offset and lb.offset <= end:
                located.append(lb)  # an empty trailing UC block still belongs to the range
        last = all_blocks[-1] if all_blocks else None
        return LocatedFile(file_length, located, f.under_construction and not f.frozen, last,
                           last is not None and not uc_last)

    def content_summary(self, caller: Caller, path: str) -> dict[str, int]:
        with self.lock:
            res = self._existing(caller, path)
            node = res.deepest if res.dotsnapshot is None else res.dotsnapshot
            length = files = dirs = space = 0
            for n in walk(node):
                if isinstance(n, INodeFile):
                    files += 1
                    flen = self.file_length(n)
                    length += flen
                    space += flen * n.replication
                else:
                    if not caller.is_superuser:
                        perms.check(caller, n, READ | EXECUTE)
                    dirs += 1
            ns_q = ds_q = -1
            if isinstance(node, INodeDirectory) and not node.frozen:
                ns_q, ds_q = node.ns_quota, node.ds_quota
            return {"length": length, "fileCount": files, "directoryCount": dirs,
                    "quota": ns_q, "spaceConsumed": space, "spaceQuota": ds_q}

    def fs_stats(self) -> dict[str, int]:
        import shutil

        with self.lock:
            used = 0
            missing = 0
            under = 0
            for block_id, entry in self.bm.blocks.items():
                holders = self.bm.live_locations(block_id)
                used += entry.block.num_bytes * len(self.bm.replicas.get(block_id, ()))
                if entry.block.num_bytes and not holders:
                    missing += 1
                elif entry.file is not None and len(holders) < entry.file.replication:
                    under += 1
            dns = [d for d in self.bm.datanodes if d.handle is not None]
        if self.config.capacity is not None:
            capacity = self.config.capacity
            remaining = max(0, capacity - used)
        else:
            capacity = remaining = 0
            for d in dns:
                try:
                    du = shutil.disk_usage(d.handle.storage.root)
                except OSError:
                    continue
                capacity = max(capacity, du.total)
                remaining = max(remaining, du.free)
        return {"capacity": capacity, "used": used, "remaining": remaining,
                "under_replicated": under, "corrupt_blocks": 0, "missing_blocks": missing}

    def acl_status(self, caller: Caller, path: str) -> INode:
        with self.lock:
            res = self._existing(caller, path)
            return res.dotsnapshot or res.deepest

    def snapshottable_dirs(self, caller: Caller) -> list[INodeDirectory]:
        with self.lock:
            return [n for n in self.inodes.values() if isinstance(n, INodeDirectory)
                    and n.snapshottable and (caller.is_superuser or n.owner == caller.user)]

    # ===========================================================================
    # namespace mutations
    # ===========================================================================
    def mkdirs(self, caller: Caller, path: str, perm: int, create_parent: bool) -> bool:
        with self.lock:
            res = self._resolve(path)
            self._check_traverse(caller, res)
            if res.complete and res.dotsnapshot is None:
                if not res.deepest.is_dir:
                    raise errors.FileAlreadyExists(f"Path is not a directory: {path}")
                return True
            _check_not_in_snapshot(res, path)
            parent = self._parent_for_new(caller, path, res)
            missing = res.parts[len(res.parts) - res.remaining:]
            if len(missing) > 1 and not create_parent:
                raise errors.FileNotFound(f"Parent directory doesn't exist: "
                                          f"{parent.path().rstrip('/')}/{missing[0]}")
            if SNAPSHOT_DIR in missing:
                raise errors.IllegalArgument(f'"{SNAPSHOT_DIR}" is a reserved name: {path}')
            perms.check(caller, parent, WRITE, parent.path())
            mtime = now_ms()
            pid = parent.id
            for i, name in enumerate(missing):
                last = i == len(missing) - 1
                # implicit parents get u+wx so that the caller can create the rest (HDFS rule)
                p = (perm & 0o1777) if last else ((perm & 0o777) | 0o300)
                # One directory at a time, as HDFS does: a quota that refuses the third
                # of "a/b/c" leaves a and b made.
                new_id = self._take_inode_id(self.inodes[pid], 1)  # type: ignore[arg-type]
                self._log({"op": "mkdir", "id": new_id, "parent": pid, "name": name,
                           "perm": p, "owner": caller.user, "group": parent.group,
                           "mtime": mtime})
                pid = new_id
            return True

    def _ap_mkdir(self, r: dict[str, Any]) -> None:
        parent = self.inodes[r["parent"]]
        assert isinstance(parent, INodeDirectory)
        node = INodeDirectory(r["id"], r["name"], r["perm"], r["owner"], r["group"], r["mtime"])
        parent.add_child(node)
        parent.mtime = r["mtime"]
        self.inodes[node.id] = node
        self._add_usage(parent, 1, 0)
        self._bump_ids(inode_id=node.id)

    def create(self, caller: Caller, path: str, perm: int, client: str, flags: int,
               create_parent: bool, replication: int, block_size: int) -> INodeFile:
        with self.lock:
            res = self._resolve(path)
            self._check_traverse(caller, res)
            _check_not_in_snapshot(res, path)
            if block_size <= 0 or block_size % BYTES_PER_CHECKSUM:
                raise errors.RemoteError(
                    f"Invalid block size {block_size}: must be a positive multiple of "
                    f"bytesPerChecksum ({BYTES_PER_CHECKSUM})")
            self.verify_replication(path, replication, "127.0.0.1")
            existing = res.last
            if existing is not None:
                if existing.is_dir:
                    raise errors.FileAlreadyExists(f"{path} already exists as a directory")
                assert isinstance(existing, INodeFile)
                if existing.client is not None:
                    self._lease_conflict(existing, client, "CREATE_FILE", path)
                if not flags & CREATE_FLAG_OVERWRITE:
                    raise errors.FileAlreadyExists(
                        f"{path} for client 127.0.0.1 already exists")
                perms.check(caller, existing, WRITE, path)
            elif not flags & CREATE_FLAG_CREATE and not flags & CREATE_FLAG_OVERWRITE:
                raise errors.FileNotFound(f"File does not exist: {path}")
            if existing is None:
                parent = self._parent_for_new(caller, path, res)
                missing = res.parts[len(res.parts) - res.remaining:-1]
                if missing and not create_parent:
                    raise errors.FileNotFound(f"Parent directory doesn't exist: "
                                              f"{parent.path().rstrip('/')}/{missing[0]}")
                perms.check(caller, parent, WRITE, parent.path())
                if missing:
                    self.mkdirs(caller, "/".join([parent.path().rstrip("/")] + missing),
                                0o755, True)
                    parent = self._resolve("/" + "/".join(res.parts[:-1])).deepest  # type: ignore[assignment]
                name = res.parts[-1]
            else:
                parent = existing.parent  # type: ignore[assignment]
                perms.check(caller, parent, WRITE, parent.path())
                perms.check_sticky(caller, parent, existing)
                name = existing.name
            assert isinstance(parent, INodeDirectory)
            repl = replication
            mtime = now_ms()
            if existing is not None:
                self._log({"op": "delete", "id": existing.id, "mtime": mtime})
            new_id = self._take_inode_id(parent, 1)
            self._log({"op": "create", "id": new_id, "parent": parent.id, "name": name,
                       "perm": perm & 0o1777, "owner": caller.user, "group": parent.group,
                       "mtime": mtime, "repl": repl, "bs": block_size, "client": client})
            node = self.inodes[new_id]
            assert isinstance(node, INodeFile)
            return node

    def verify_replication(self, path: str, replication: int,
                           client_machine: str | None = None) -> None:
        """HDFS's ``BlockManager.verifyReplication``: a file keeps the factor it asked for,
        bounded only by the configured minimum and maximum.  A 1-DataNode cluster stores
        and reports replication 3 (its blocks count as under-replicated), and a Java
        client that appends to such a file asks ``getAdditionalDatanode`` for the missing
        pipeline nodes, which fails as on HDFS (see :meth:`additional_datanodes`)."""
        cfg = self.config
        if replication > cfg.max_replication:
            err = f" exceeds maximum of {cfg.max_replication}"
        elif replication < cfg.min_replication:
            err = f" is less than the required minimum of {cfg.min_replication}"
        else:
            return
        raise errors.RemoteError(
            f"Requested replication factor of {replication}{err} for {path}"
            + (f", clientName={client_machine}" if client_machine is not None else ""))

    def _lease_conflict(self, f: INodeFile, client: str, op: str, path: str) -> None:
        """Another writer holds the file: recover it if its soft limit expired, else refuse."""
        assert f.client is not None
        if f.client != client and self._lease_expired(f.client, self.config.lease_soft_limit):
            log.info("lease of %s on %s expired; recovering", f.client, path)
            self._recover_file(f)
            return
        raise errors.AlreadyBeingCreated(
            f"Failed to {op} {path} for {client} on 127.0.0.1 because this file lease is "
            f"currently owned by {f.client} on 127.0.0.1")

    def _ap_create(self, r: dict[str, Any]) -> None:
        parent = self.inodes[r["parent"]]
        assert isinstance(parent, INodeDirectory)
        node = INodeFile(r["id"], r["name"], r["perm"], r["owner"], r["group"], r["mtime"],
                         r["mtime"], r["repl"], r["bs"], r.get("client"))
        parent.add_child(node)
        parent.mtime = r["mtime"]
        self.inodes[node.id] = node
        self._add_usage(parent, 1, 0)
        if node.client is not None:
            self._lease_add(node.client, node.id)
        self._bump_ids(inode_id=node.id)

    def delete(self, caller: Caller, path: str, recursive: bool) -> bool:
        with self.lock:
            res = self._resolve(path)
            self._check_traverse(caller, res)
            _check_not_in_snapshot(res, path)
            node = res.last
            if node is None:
                return False
            if node.parent is None:
                return False  # HDFS refuses to delete the root
            if isinstance(node, INodeDirectory) and node.children and not recursive:
                raise errors.PathIsNotEmptyDirectory(f"`{path} is non empty': "
                                                     f"Directory is not empty")
            perms.check(caller, node.parent, WRITE | EXECUTE, node.parent.path())
            perms.check_sticky(caller, node.parent, node)
            for n in walk(node):
                if isinstance(n, INodeDirectory):
                    if n.snapshots:
                        raise errors.SnapshotError(
                            f"The directory {n.path()} cannot be deleted since {n.path()} is "
                            f"snapshottable and already has snapshots")
                    if n.children and not caller.is_superuser:  # HDFS: subAccess=ALL
                        perms.check(caller, n, READ | WRITE | EXECUTE)
            self._log({"op": "delete", "id": node.id, "mtime": now_ms()})
            return True

    def _detach(self, node: INode, mtime: int) -> tuple[int, int]:
        """Take ``node`` out of its parent (delete, rename), giving its subtree's
        namespace and space usage back to the parent's quotas; returns that usage."""
        parent = node.parent
        assert parent is not None
        ns, ds = subtree_usage(node)
        parent.remove_child(node)
        parent.mtime = mtime
        self._add_usage(parent, -ns, -ds)
        return ns, ds

    def _ap_delete(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        self._detach(node, r["mtime"])
        for n in walk(node):
            self.inodes.pop(n.id, None)
            if isinstance(n, INodeFile):
                self._lease_remove(n.client, n.id)
                for b in n.blocks:
                    self._release_block(b.id)
        node.parent = None

    def _release_block(self, block_id: int) -> None:
        entry = self.bm.blocks.get(block_id)
        if entry is None:
            return
        entry.file = None
        self.durable_len.pop(block_id, None)
        if entry.snap_refs <= 0:
            self.bm.invalidate(block_id)

    def rename(self, caller: Caller, src: str, dst: str) -> bool:
        """Old-style rename: moves *into* an existing directory; False instead of most errors."""
        with self.lock:
            sres = self._resolve(src)
            self._check_traverse(caller, sres)
            node = sres.last
            if node is None or node.parent is None or sres.in_snapshot:
                return False
            dres = self._resolve(dst)
            self._check_traverse(caller, dres)
            if dres.in_snapshot or dres.dotsnapshot is not None:
                return False
            target = dres.last
            if target is not None and target.is_dir:
                if target is node:
                    return True
                parent = target
                name = node.name
                if name in parent.children:  # type: ignore[attr-defined]
                    return False
            elif target is not None:
                return target is node
            else:
                if dres.remaining != 1 or dres.blocked:
                    return False
                parent = dres.deepest
                name = dres.parts[-1]
            assert isinstance(parent, INodeDirectory)
            if parent is node or node in parent.ancestors() or name == SNAPSHOT_DIR:
                return False
            self._do_move(caller, node, parent, name)
            return True

    def rename2(self, caller: Caller, src: str, dst: str, overwrite: bool) -> None:
        """POSIX rename (rename2): never moves into a directory; errors are exceptions."""
        with self.lock:
            sres = self._existing(caller, src, write=True)
            node = sres.deepest
            if node.parent is None:
                raise errors.RemoteError("Rename source / cannot be renamed")
            dres = self._resolve(dst)
            self._check_traverse(caller, dres)
            _check_not_in_snapshot(dres, dst)
            if dres.blocked:
                raise errors.ParentNotDirectory(
                    f"rename destination parent {dres.deepest.path()} is a file.")
            if dst.rstrip("/") == src.rstrip("/") or dres.last is node:
                raise errors.FileAlreadyExists(
                    f"The source {src} and destination {dst} are the same")
            target = dres.last
            if target is None:
                if dres.remaining > 1:
                    raise errors.FileNotFound(
                        f"rename destination parent {dst.rsplit('/', 1)[0]} not found.")
                parent = dres.deepest
            else:
                parent = target.parent  # type: ignore[assignment]
            if not isinstance(parent, INodeDirectory):
                raise errors.ParentNotDirectory(
                    f"rename destination parent {parent.path()} is a file.")
            if parent is node or node in parent.ancestors():
                raise errors.RemoteError(
                    f"Rename destination {dst} is a directory or file under source {src}")
            name = dres.parts[-1]
            if name == SNAPSHOT_DIR:
                raise errors.IllegalArgument(f'"{SNAPSHOT_DIR}" is a reserved name: {dst}')
            if target is not None:
                if not overwrite:
                    raise errors.FileAlreadyExists(f"rename destination {dst} already exists.")
                if target.is_dir != node.is_dir:
                    raise errors.RemoteError(
                        f"Source {src} and destination {dst} must both be directories"
                        if node.is_dir else
                        f"Source {src} and destination {dst} must both be files")
                if isinstance(target, INodeDirectory) and target.children:
                    raise errors.RemoteError(f"rename destination directory is not empty: {dst}")
                if isinstance(target, INodeDirectory) and target.snapshots:
                    raise errors.SnapshotError(f"{dst} has snapshots; cannot overwrite it")
                perms.check(caller, parent, WRITE | EXECUTE, parent.path())
                perms.check_sticky(caller, parent, target)
                self._do_move(caller, node, parent, name, replace=target)
            else:
                self._do_move(caller, node, parent, name)

    def _do_move(self, caller: Caller, node: INode, parent: INodeDirectory, name: str,
                 replace: INode | None = None) -> None:
        src_parent = node.parent
        assert src_parent is not None
        perms.check(caller, src_parent, WRITE | EXECUTE, src_parent.path())
        perms.check_sticky(caller, src_parent, node)
        perms.check(caller, parent, WRITE | EXECUTE, parent.path())
        # quota: only directories not shared by source and destination gain usage
        common = self._common_ancestor(src_parent, parent)
        ns, ds = subtree_usage(node)
        self._check_quota(parent, ns, ds, common)
        mtime = now_ms()
        if replace is not None:
            self._log({"op": "delete", "id": replace.id, "mtime": mtime})
        self._log({"op": "rename", "id": node.id, "parent": parent.id, "name": name,
                   "mtime": mtime})

    @staticmethod
    def _common_ancestor(a: INodeDirectory, b: INodeDirectory) -> INodeDirectory | None:
        chain_a = {id(x) for x in [a, *a.ancestors()]}
        for x in [b, *b.ancestors()]:
            if id(x) in chain_a:
                return x
        return None

    def _ap_rename(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        new_parent = self.inodes[r["parent"]]
        assert isinstance(new_parent, INodeDirectory)
        ns, ds = self._detach(node, r["mtime"])
        node.name = r["name"]
        new_parent.add_child(node)
        new_parent.mtime = r["mtime"]
        self._add_usage(new_parent, ns, ds)

    def set_permission(self, caller: Caller, path: str, perm: int) -> None:
        with self.lock:
            res = self._existing(caller, path, write=True)
            node = res.deepest
            perms.check_owner(caller, node, path)
            self._log({"op": "set_perm", "id": node.id, "perm": perm & 0o1777})

    def _ap_set_perm(self, r: dict[str, Any]) -> None:
        self.inodes[r["id"]].perm = r["perm"]

    def set_owner(self, caller: Caller, path: str, owner: str | None,
                  group: str | None) -> None:
        with self.lock:
            if owner is None and group is None:
                raise errors.RemoteError("username == null && groupname == null")
            res = self._existing(caller, path, write=True)
            node = res.deepest
            perms.check_owner(caller, node, path)
            if not caller.is_superuser:
                if owner is not None and owner != node.owner:
                    raise errors.AccessControl(
                        f"User {caller.user} is not a super user (non-super user cannot change "
                        f"owner)")
                if group is not None and group not in caller.groups:
                    raise errors.AccessControl(
                        f"User {caller.user} does not belong to {group}")
            self._log({"op": "set_owner", "id": node.id, "owner": owner or node.owner,
                       "group": group or node.group})

    def _ap_set_owner(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        node.owner = r["owner"]
        node.group = r["group"]

    def set_times(self, caller: Caller, path: str, mtime: int, atime: int) -> None:
        with self.lock:
            res = self._existing(caller, path, write=True)
            node = res.deepest
            if not (caller.is_superuser or caller.user == node.owner):
                perms.check(caller, node, WRITE, path)
            self._log({"op": "set_times", "id": node.id,
                       "mtime": node.mtime if mtime < 0 else mtime,
                       "atime": node.atime if atime < 0 else atime})

    def _ap_set_times(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        node.mtime = r["mtime"]
        node.atime = r["atime"]

    def set_replication(self, caller: Caller, path: str, replication: int) -> bool:
        """False for a directory or a missing path (HDFS answers, not errors); the factor
        is checked against the bounds first, even for a missing path, as HDFS does."""
        self.verify_replication(path, replication)
        with self.lock:
            res = self._resolve(path)
            self._check_traverse(caller, res)
            _check_not_in_snapshot(res, path)
            node = res.last
            if not isinstance(node, INodeFile):
                return False
            perms.check(caller, node, WRITE, path)
            repl = replication
            if repl == node.replication:
                return True
            delta = node.space() // node.replication * (repl - node.replication)
            self._check_quota(node.parent, 0, delta)
            self._log({"op": "set_repl", "id": node.id, "repl": repl})
            return True

    def _ap_set_repl(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        assert isinstance(node, INodeFile)
        before = node.space()
        node.replication = r["repl"]
        self._add_usage(node.parent, 0, node.space() - before)
        self.replication_dirty = True

    def set_quota(self, caller: Caller, path: str, ns_quota: int, ds_quota: int) -> None:
        """``QUOTA_DONT_SET`` (2^63-1) keeps a value; ``-1`` (QUOTA_RESET) clears it."""
        with self.lock:
            perms.check_superuser(caller, f"setQuota {path}")
            res = self._existing(caller, path, write=True)
            node = res.deepest
            if not isinstance(node, INodeDirectory):
                raise errors.FileNotFound(f"Directory does not exist: {path}")
            keep = 2**63 - 1
            for q in (ns_quota, ds_quota):
                if q != keep and q < -1:
                    raise errors.IllegalArgument(f"Illegal value for quota: {q}")
            if node.parent is None and ns_quota not in (keep, -1) and ns_quota == 0:
                raise errors.IllegalArgument("Cannot set a zero namespace quota on /")
            ns = node.ns_quota if ns_quota == keep else ns_quota
            ds = node.ds_quota if ds_quota == keep else ds_quota
            self._log({"op": "set_quota", "id": node.id, "ns": ns, "ds": ds})

    def _ap_set_quota(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        assert isinstance(node, INodeDirectory)
        had = node.has_quota
        node.ns_quota = r["ns"]
        node.ds_quota = r["ds"]
        if node.has_quota and not had:
            node.ns_used, node.ds_used = subtree_usage(node)
