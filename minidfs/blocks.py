"""Block map, replica locations and DataNode registry (the NameNode's view).

DataNodes run in the same process, so "block reports" and "block received"
messages are plain method calls; what stays realistic is that the NameNode
learns where replicas are *from the DataNodes* (a scan at DataNode start),
never from its own journal, so a wiped or stopped DataNode is seen as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from minidfs.inodes import Block, INodeFile


@dataclass
class DatanodeDescriptor:
    index: int
    uuid: str
    storage_id: str
    host: str = "127.0.0.1"
    xfer_port: int = 0
    ipc_port: int = 0   #: ClientDatanodeProtocol (minidfs.dn_ipc)
    alive: bool = False
    handle: Any = None  #: the in-process DataNode while it runs

    @property
    def address(self) -> str:
        return f"{self.host}:{self.xfer_port}"


@dataclass
class BlockEntry:
    """A block known to the namespace: owned by a live file and/or pinned by snapshots."""

    block: Block
    file: INodeFile | None
    snap_refs: int = 0


@dataclass
class BlockManager:
    datanodes: list[DatanodeDescriptor] = field(default_factory=list)
    blocks: dict[int, BlockEntry] = field(default_factory=dict)
    #: block id -> DataNode indexes holding a replica, in pipeline order
    replicas: dict[int, list[int]] = field(default_factory=dict)
    #: DataNode index -> replicas it is to delete at its next heartbeat
    invalidations: dict[int, set[int]] = field(default_factory=dict)
    _next_target: int = 0

    # -- DataNodes --------------------------------------------------------------
    def live(self) -> list[DatanodeDescriptor]:
        return [d for d in self.datanodes if d.alive]

    def by_uuid(self, uuid: str) -> DatanodeDescriptor | None:
        for d in self.datanodes:
            if d.uuid == uuid:
                return d
        return None

    def by_address(self, host: str, port: int) -> DatanodeDescriptor | None:
        for d in self.datanodes:
            if d.xfer_port == port and (d.host == host or not host):
                return d
        return None

    def choose_targets(self, count: int, exclude: Iterable[int] = ()) -> list[DatanodeDescriptor]:
        """Round-robin over live DataNodes so blocks spread evenly."""
        excluded = set(exclude)
        candidates = [d for d in self.live() if d.index not in excluded]
        if not candidates:
            return []
        start = self._next_target % len(candidates)
        self._next_target += 1
        ordered = candidates[start:] + candidates[:start]
        return ordered[:count]

    # -- replicas ---------------------------------------------------------------
    def add_replica(self, block_id: int, dn_index: int) -> None:
        holders = self.replicas.setdefault(block_id, [])
        if dn_index not in holders:
            holders.append(dn_index)

    def remove_replica(self, block_id: int, dn_index: int) -> None:
        holders = self.replicas.get(block_id)
        if holders and dn_index in holders:
            holders.remove(dn_index)
            if not holders:
                del self.replicas[block_id]

    def locations(self, block_id: int) -> list[DatanodeDescriptor]:
        """Replica holders, live ones first: clients try them in order."""
        holders = [self.datanodes[i] for i in self.replicas.get(block_id, ())]
        return [d for d in holders if d.alive] + [d for d in holders if not d.alive]

    def live_locations(self, block_id: int) -> list[DatanodeDescriptor]:
        return [self.datanodes[i] for i in self.replicas.get(block_id, ())
                if self.datanodes[i].alive]

    def invalidate(self, block_id: int) -> None:
        """Forget a block at once; its replicas go at their DataNodes' next heartbeat.

        That is HDFS's order (``BlockManager.removeBlock``: out of the block map now,
        into the DataNodes' invalidation work, sent with a heartbeat reply): a reader
        that already holds the block's locations keeps reading the old bytes for a few
        seconds, then the DataNode answers "replica not found".  A stopped DataNode gets
        the work when it is back, and its block report drops unknown blocks anyway.
        """
        self.blocks.pop(block_id, None)
        for dn_index in self.replicas.pop(block_id, []):
            self.invalidations.setdefault(dn_index, set()).add(block_id)

    def take_invalidations(self, dn_index: int) -> set[int]:
        """The replicas DataNode ``dn_index`` is to delete now (its heartbeat's work)."""
        return self.invalidations.pop(dn_index, set())


@dataclass
class LocatedBlock:
    block: Block
    offset: int
    length: int
    locations: list[DatanodeDescriptor]


@dataclass
class LocatedFile:
    """getBlockLocations' answer.  As in HDFS, ``file_length`` leaves out a last block
    under construction (readers learn its length from a DataNode), and
    ``last_complete`` is False for such a block and for a file without blocks."""

    file_length: int
    blocks: list[LocatedBlock]
    under_construction: bool
    last: LocatedBlock | None
    last_complete: bool = True
