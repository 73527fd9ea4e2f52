"""Snapshots: frozen, read-only copies of a directory subtree.

Why a full copy of the subtree's inodes (not HDFS's diff lists): snapshots
here pin datasets for reading, are taken rarely, and a copy makes
``<dir>/.snapshot/<name>/...`` resolution trivially correct.  Blocks are
shared, not copied: finalized block data never changes below the length
recorded in the copy (appends only add bytes), and block reference counts
keep replicas alive while any snapshot still needs them.

Mixed into :class:`minidfs.namesystem.Namesystem`; same lock and journal.
"""

from __future__ import annotations

import time
from typing import Any

from minidfs import errors
from minidfs import permissions as perms
from minidfs.blocks import BlockEntry
from minidfs.inodes import SNAPSHOT_DIR, INodeDirectory, INodeFile, Snapshot, now_ms, walk
from minidfs.permissions import Caller


class SnapshotOps:
    """allowSnapshot / createSnapshot / deleteSnapshot / renameSnapshot and their records."""

    # -- snapshots ----------------------------------------------------------------
    def allow_snapshot(self, caller: Caller, path: str) -> None:
        with self.lock:
            perms.check_superuser(caller, f"allowSnapshot {path}")
            node = self._existing(caller, path, write=True).deepest
            if not isinstance(node, INodeDirectory):
                raise errors.FileNotFound(f"Directory does not exist: {path}")
            if not node.snapshottable:
                self._log({"op": "allow_snap", "id": node.id})

    def _ap_allow_snap(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        assert isinstance(node, INodeDirectory)
        node.snapshottable = True

    def disallow_snapshot(self, caller: Caller, path: str) -> None:
        with self.lock:
            perms.check_superuser(caller, f"disallowSnapshot {path}")
            node = self._existing(caller, path, write=True).deepest
            if not isinstance(node, INodeDirectory):
                raise errors.FileNotFound(f"Directory does not exist: {path}")
            if node.snapshots:
                raise errors.SnapshotError(
                    f"The directory {path} has snapshot(s). Please redo the operation after "
                    f"removing all the snapshots.")
            if node.snapshottable:
                self._log({"op": "disallow_snap", "id": node.id})

    def _ap_disallow_snap(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        assert isinstance(node, INodeDirectory)
        node.snapshottable = False

    def _snap_dir(self, caller: Caller, path: str) -> INodeDirectory:
        node = self._existing(caller, path, write=True).deepest
        if not isinstance(node, INodeDirectory) or not node.snapshottable:
            raise errors.SnapshotError(f"Directory is not a snapshottable directory: {path}")
        perms.check_owner(caller, node, path)
        return node

    def create_snapshot(self, caller: Caller, path: str, name: str | None) -> str:
        with self.lock:
            node = self._snap_dir(caller, path)
            ctime = now_ms()
            if not name:
                name = "s" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(ctime / 1000)) + \
                    f".{ctime % 1000:03d}"
            if "/" in name or name in (".", "..", SNAPSHOT_DIR) or ":" in name:
                raise errors.IllegalArgument(f"Invalid snapshot name: {name}")
            if name in node.snapshots:
                raise errors.SnapshotError(
                    f"Failed to add snapshot: there is already a snapshot with the same name "
                    f"\"{name}\".")
            self._log({"op": "create_snap", "id": node.id, "name": name, "ctime": ctime})
            return f"{node.path().rstrip('/')}/{SNAPSHOT_DIR}/{name}"

    def _ap_create_snap(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        assert isinstance(node, INodeDirectory)
        root = node.freeze()
        root.mtime = r["ctime"]
        node.snapshots[r["name"]] = Snapshot(r["name"], r["ctime"], root)
        self._pin_snapshot(root)

    def _pin_snapshot(self, root: INodeDirectory) -> None:
        for n in walk(root):
            if isinstance(n, INodeFile):
                for b in n.blocks:
                    entry = self.bm.blocks.get(b.id)
                    if entry is None:
                        entry = self.bm.blocks[b.id] = BlockEntry(b, None)
                    elif entry.file is None and b.num_bytes > entry.block.num_bytes:
                        # only snapshots hold it: the longest view decides what replicas keep
                        entry.block = b
                    entry.snap_refs += 1

    def delete_snapshot(self, caller: Caller, path: str, name: str) -> None:
        with self.lock:
            node = self._snap_dir(caller, path)
            if name not in node.snapshots:
                raise errors.SnapshotError(
                    f"Cannot delete snapshot {name} from path {path}: the snapshot does not "
                    f"exist.")
            self._log({"op": "delete_snap", "id": node.id, "name": name})

    def _ap_delete_snap(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        assert isinstance(node, INodeDirectory)
        snap = node.snapshots.pop(r["name"])
        for n in walk(snap.root):
            if isinstance(n, INodeFile):
                for b in n.blocks:
                    entry = self.bm.blocks.get(b.id)
                    if entry is None:
                        continue
                    entry.snap_refs -= 1
                    if entry.snap_refs <= 0 and entry.file is None:
                        self.bm.invalidate(b.id)

    def rename_snapshot(self, caller: Caller, path: str, old: str, new: str) -> None:
        with self.lock:
            node = self._snap_dir(caller, path)
            if old not in node.snapshots:
                raise errors.SnapshotError(f"The snapshot {old} does not exist for directory "
                                           f"{path}")
            if new in node.snapshots:
                raise errors.SnapshotError(f"The snapshot {new} already exists for directory "
                                           f"{path}")
            if "/" in new or not new or new == SNAPSHOT_DIR:
                raise errors.IllegalArgument(f"Invalid snapshot name: {new}")
            self._log({"op": "rename_snap", "id": node.id, "old": old, "new": new})

    def _ap_rename_snap(self, r: dict[str, Any]) -> None:
        node = self.inodes[r["id"]]
        assert isinstance(node, INodeDirectory)
        snap = node.snapshots.pop(r["old"])
        snap.name = r["new"]
        node.snapshots[r["new"]] = snap
