"""The namespace data model: inodes, blocks, and path parsing.

Plain objects with ``__slots__``: a namespace of tens of thousands of inodes
must stay cheap to hold and to walk, and everything is mutated only under the
namesystem lock, so no object carries its own lock.

Snapshot copies reuse the same classes (``frozen=True``) so that path
resolution, permission checks and status building need no second code path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

ROOT_ID = 16385          # HDFS's conventional root inode id
SNAPSHOT_DIR = ".snapshot"
BLOCK_ID_START = 2**30 + 1
GENSTAMP_START = 1001


def now_ms() -> int:
    """HDFS times are milliseconds since the epoch."""
    return int(time.time() * 1000)


class Block:
    """One block of a file.  ``complete`` = length committed by the client."""

    __slots__ = ("complete", "gs", "id", "num_bytes")

    def __init__(self, block_id: int, gs: int, num_bytes: int = 0, complete: bool = False):
        self.id = block_id
        self.gs = gs
        self.num_bytes = num_bytes
        self.complete = complete

    def copy(self) -> Block:
        return Block(self.id, self.gs, self.num_bytes, True)

    def to_json(self) -> list[Any]:
        return [self.id, self.gs, self.num_bytes, self.complete]

    @classmethod
    def from_json(cls, data: list[Any]) -> Block:
        return cls(int(data[0]), int(data[1]), int(data[2]), bool(data[3]))

    def __repr__(self) -> str:
        return f"Block({self.id}, gs={self.gs}, len={self.num_bytes}, complete={self.complete})"


class INode:
    __slots__ = ("atime", "frozen", "group", "id", "mtime", "name", "owner", "parent", "perm")

    is_dir = False

    def __init__(self, inode_id: int, name: str, perm: int, owner: str, group: str,
                 mtime: int, atime: int):
        self.id = inode_id
        self.name = name
        self.parent: INodeDirectory | None = None
        self.perm = perm
        self.owner = owner
        self.group = group
        self.mtime = mtime
        self.atime = atime
        self.frozen = False

    def path(self) -> str:
        parts: list[str] = []
        node: INode | None = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    def ancestors(self) -> Iterator[INodeDirectory]:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def _base_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "perm": self.perm, "owner": self.owner,
                "group": self.group, "mtime": self.mtime, "atime": self.atime}


class INodeFile(INode):
    __slots__ = ("block_size", "blocks", "client", "replication")

    def __init__(self, inode_id: int, name: str, perm: int, owner: str, group: str,
                 mtime: int, atime: int, replication: int, block_size: int,
                 client: str | None = None):
        super().__init__(inode_id, name, perm, owner, group, mtime, atime)
        self.replication = replication
        self.block_size = block_size
        self.blocks: list[Block] = []
        #: lease holder while the file is under construction, else None
        self.client = client

    @property
    def under_construction(self) -> bool:
        return self.client is not None

    def committed_length(self) -> int:
        return sum(b.num_bytes for b in self.blocks)

    def space(self) -> int:
        """Disk space charged against quotas: UC blocks count as a full block."""
        total = 0
        for b in self.blocks:
            total += b.num_bytes if b.complete else max(self.block_size, b.num_bytes)
        return total * self.replication

    def freeze(self) -> INodeFile:
        copy = INodeFile(self.id, self.name, self.perm, self.owner, self.group, self.mtime,
                         self.atime, self.replication, self.block_size)
        copy.blocks = [b.copy() for b in self.blocks if b.num_bytes > 0 or b.complete]
        copy.frozen = True
        return copy

    def to_json(self) -> dict[str, Any]:
        d = self._base_json()
        d.update(t="f", repl=self.replication, bs=self.block_size,
                 blocks=[b.to_json() for b in self.blocks])
        if self.client is not None:
            d["client"] = self.client
        return d


class Snapshot:
    __slots__ = ("ctime", "name", "root")

    def __init__(self, name: str, ctime: int, root: INodeDirectory):
        self.name = name
        self.ctime = ctime
        self.root = root


class INodeDirectory(INode):
    __slots__ = (
        "_sorted",
        "children",
        "ds_quota",
        "ds_used",
        "ns_quota",
        "ns_used",
        "snapshots",
        "snapshottable",
    )

    is_dir = True

    def __init__(self, inode_id: int, name: str, perm: int, owner: str, group: str,
                 mtime: int, atime: int = 0):
        super().__init__(inode_id, name, perm, owner, group, mtime, atime)
        self.children: dict[str, INode] = {}
        self.ns_quota = -1
        self.ds_quota = -1
        #: cached usage, maintained only while a quota is set (like HDFS)
        self.ns_used = 0
        self.ds_used = 0
        self.snapshottable = False
        self.snapshots: dict[str, Snapshot] = {}
        self._sorted: list[bytes] | None = None

    @property
    def has_quota(self) -> bool:
        return self.ns_quota >= 0 or self.ds_quota >= 0

    def add_child(self, child: INode) -> None:
        child.parent = self
        self.children[child.name] = child
        self._sorted = None

    def remove_child(self, child: INode) -> None:
        del self.children[child.name]
        self._sorted = None

    def sorted_names(self) -> list[bytes]:
        """Children's names as UTF-8 bytes, sorted: listing pages resume by byte order."""
        if self._sorted is None:
            self._sorted = sorted(name.encode("utf-8") for name in self.children)
        return self._sorted

    def freeze(self) -> INodeDirectory:
        copy = INodeDirectory(self.id, self.name, self.perm, self.owner, self.group,
                              self.mtime, self.atime)
        copy.frozen = True
        for child in self.children.values():
            copy.add_child(child.freeze())  # type: ignore[attr-defined]
        return copy

    def to_json(self) -> dict[str, Any]:
        d = self._base_json()
        d.update(t="d", children=[c.to_json() for c in self.children.values()])  # type: ignore[attr-defined]
        if self.has_quota:
            d["quota"] = [self.ns_quota, self.ds_quota]
        if self.snapshottable:
            d["snapshottable"] = True
            d["snapshots"] = [{"name": s.name, "ctime": s.ctime, "root": s.root.to_json()}
                              for s in self.snapshots.values()]
        return d


def inode_from_json(d: dict[str, Any], frozen: bool = False) -> INode:
    if d["t"] == "f":
        f = INodeFile(d["id"], d["name"], d["perm"], d["owner"], d["group"], d["mtime"],
                      d["atime"], d["repl"], d["bs"], d.get("client"))
        f.blocks = [Block.from_json(b) for b in d["blocks"]]
        f.frozen = frozen
        return f
    node = INodeDirectory(d["id"], d["name"], d["perm"], d["owner"], d["group"], d["mtime"],
                          d["atime"])
    node.frozen = frozen
    for c in d["children"]:
        node.add_child(inode_from_json(c, frozen))
    if "quota" in d:
        node.ns_quota, node.ds_quota = d["quota"]
    if d.get("snapshottable"):
        node.snapshottable = True
        for s in d.get("snapshots", []):
            root = inode_from_json(s["root"], frozen=True)
            assert isinstance(root, INodeDirectory)
            node.snapshots[s["name"]] = Snapshot(s["name"], s["ctime"], root)
    return node


def walk(node: INode) -> Iterator[INode]:
    """Pre-order walk of a subtree (iterative: deep trees must not hit the recursion limit)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, INodeDirectory):
            stack.extend(n.children.values())


def subtree_usage(node: INode) -> tuple[int, int]:
    """(namespace count, disk space) of a subtree, as quotas count them."""
    ns = 0
    ds = 0
    for n in walk(node):
        ns += 1
        if isinstance(n, INodeFile):
            ds += n.space()
    return ns, ds


def split_path(path: str) -> list[str]:
    """Validate an absolute HDFS path and return its components.

    Mirrors DFSUtil.isValidName: absolute, no ``.``/``..`` components, no
    ``:`` in components, no NUL.  Repeated slashes are tolerated (HDFS
    normalises them).  Raises ValueError with the reason.
    """
    if not path or not path.startswith("/"):
        raise ValueError(f"Invalid path name: {path!r} is not absolute")
    if "\x00" in path:
        raise ValueError("Invalid path name: contains NUL")
    parts = [p for p in path.split("/") if p]
    for p in parts:
        if p in (".", "..") or ":" in p:
            raise ValueError(f"Invalid path name {path}: illegal component {p!r}")
    return parts
