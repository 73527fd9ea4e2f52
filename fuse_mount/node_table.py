"""Which path each FUSE node id and file handle stands for, written down so that a
new daemon can take over a live connection.

The kernel names files by the node ids our LOOKUP replies gave it, and open
files by the handles our OPEN replies gave it; it keeps using both after the
daemon that handed them out has died (``../shared/docs/fuse-takeover.md``).
So every new id and handle is appended to a journal *before* the reply that
hands it out is written: a successor replays the journal and answers for
every id the kernel can still send.  One ``write(2)`` per record on an
``O_APPEND`` descriptor, unbuffered: a record is in the kernel's page cache
the moment the call returns, so a SIGKILL right after cannot lose it.  The
journal lives in the mount's takeover directory (tmpfs); it is compacted
(a fresh file renamed over the old one) when it holds many dead records.

Records, one per line, fields separated by a tab, paths escaped:
``N id path`` a node, ``F id`` forgotten, ``M old new`` a rename of a path
and everything under it, ``H fh kind flags path`` an open handle
(kind ``r``: read, ``w``: write), ``D fh`` a write handle finished in HDFS,
``L fh`` a write handle a successor gave up (its writer gets EIO; a later
successor must not act on it again), ``C fh`` a handle released.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

ROOT = 1


def _esc(path: str) -> str:
    return path.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def _unesc(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass
class HandleRecord:
    """What a successor needs to answer for an open handle it did not open."""
    fh: int
    kind: str        # "r" read, "w" write, "l" a write handle lost in a crash
    flags: int
    path: str
    finished: bool = False   # a write handle whose HDFS file was completed


class NodeTable:
    """Node id <-> path, lookup counts, and the open-handle records; thread-safe."""

    def __init__(self, journal: str | None = None):
        self._lock = threading.Lock()
        self._path: dict[int, str] = {ROOT: "/"}
        self._id: dict[str, int] = {"/": ROOT}
        self._nlookup: dict[int, int] = {}
        self.handles: dict[int, HandleRecord] = {}
        self._next = ROOT + 1
        self._next_fh = 1
        self._journal_path = journal
        self._fd = -1
        self._records = 0
        if journal is not None:
            self._replay(journal)
            self._compact()

    # -- the table ------------------------------------------------------------------------
    def __len__(self) -> int:
        """Node ids known, the root included."""
        return len(self._path)

    def path(self, nodeid: int) -> str | None:
        return self._path.get(nodeid)

    def child(self, parent: int, name: str) -> str | None:
        base = self._path.get(parent)
        if base is None:
            return None
        return ("/" if base == "/" else base + "/") + name

    def lookup(self, path: str) -> int:
        """The node id of ``path``, one more lookup counted (a LOOKUP/CREATE/MKDIR reply)."""
        with self._lock:
            nodeid = self._id.get(path)
            if nodeid is None:
                nodeid = self._next
                self._next += 1
                self._write(f"N\t{nodeid}\t{_esc(path)}\n")
                self._path[nodeid] = path
                self._id[path] = nodeid
            if nodeid != ROOT:
                self._nlookup[nodeid] = self._nlookup.get(nodeid, 0) + 1
            return nodeid

    def forget(self, nodeid: int, n: int) -> None:
        with self._lock:
            left = self._nlookup.get(nodeid, 0) - n
            if left > 0:
                self._nlookup[nodeid] = left
                return
            self._nlookup.pop(nodeid, None)
            path = self._path.pop(nodeid, None)
            if path is not None and self._id.get(path) == nodeid:
                del self._id[path]
            if path is not None:
                self._write(f"F\t{nodeid}\n")

    def detach(self, path: str) -> None:
        """``path`` was removed: a later lookup of that name is a new node (the old id
        keeps its path for the calls the kernel may still make on it)."""
        with self._lock:
            self._id.pop(path, None)

    def rename(self, old: str, new: str) -> None:
        with self._lock:
            self._write(f"M\t{_esc(old)}\t{_esc(new)}\n")
            self._apply_rename(old, new)

    def _apply_rename(self, old: str, new: str) -> None:
        prefix = old.rstrip("/") + "/"
        replaced = self._id.pop(new, None)
        moved = {}
        for nodeid, p in self._path.items():
            if p == old:
                moved[nodeid] = new
            elif p.startswith(prefix):
                moved[nodeid] = new.rstrip("/") + "/" + p[len(prefix):]
        for nodeid, p in moved.items():
            if self._id.get(self._path[nodeid]) == nodeid:
                del self._id[self._path[nodeid]]
            self._path[nodeid] = p
            self._id[p] = nodeid
        del replaced
        for h in self.handles.values():
            if h.path == old:
                h.path = new
            elif h.path.startswith(prefix):
                h.path = new.rstrip("/") + "/" + h.path[len(prefix):]

    # -- handles ----------------------------------------------------------------------------
    def new_handle(self, kind: str, flags: int, path: str) -> int:
        with self._lock:
            fh = self._next_fh
            self._next_fh += 1
            self._write(f"H\t{fh}\t{kind}\t{flags}\t{_esc(path)}\n")
            self.handles[fh] = HandleRecord(fh, kind, flags, path)
            return fh

    def finished(self, fh: int) -> None:
        with self._lock:
            h = self.handles.get(fh)
            if h is not None and not h.finished:
                h.finished = True
                self._write(f"D\t{fh}\n")

    def lost(self, fh: int) -> None:
        with self._lock:
            h = self.handles.get(fh)
            if h is not None and h.kind == "w":
                h.kind = "l"
                self._write(f"L\t{fh}\n")

    def close_handle(self, fh: int) -> None:
        with self._lock:
            if self.handles.pop(fh, None) is not None:
                self._write(f"C\t{fh}\n")

    # -- the journal ------------------------------------------------------------------------
    def _write(self, record: str) -> None:
        if self._fd >= 0:
            os.write(self._fd, record.encode("utf-8", "surrogateescape"))
            self._records += 1
            if self._records > 4096 and self._records > 8 * (len(self._path) + len(self.handles)):
                self._compact()

    def _replay(self, journal: str) -> None:
        try:
            with open(journal, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return
        for raw in data.split(b"\n"):
            if not raw:
                continue
            f = raw.decode("utf-8", "surrogateescape").split("\t")
            try:
                self._apply(f)
            except (IndexError, ValueError):
                break   # a torn last record: everything before it stands

    def _apply(self, f: list[str]) -> None:
        kind = f[0]
        if kind == "N":
            nodeid, path = int(f[1]), _unesc(f[2])
            self._path[nodeid] = path
            self._id[path] = nodeid
            self._nlookup[nodeid] = max(1, self._nlookup.get(nodeid, 0))
            self._next = max(self._next, nodeid + 1)
        elif kind == "F":
            nodeid = int(f[1])
            path = self._path.pop(nodeid, None)
            self._nlookup.pop(nodeid, None)
            if path is not None and self._id.get(path) == nodeid:
                del self._id[path]
        elif kind == "M":
            self._apply_rename(_unesc(f[1]), _unesc(f[2]))
        elif kind == "H":
            fh = int(f[1])
            self.handles[fh] = HandleRecord(fh, f[2], int(f[3]), _unesc(f[4]))
            self._next_fh = max(self._next_fh, fh + 1)
        elif kind == "D":
            h = self.handles.get(int(f[1]))
            if h is not None:
                h.finished = True
        elif kind == "L":
            h = self.handles.get(int(f[1]))
            if h is not None:
                h.kind = "l"
        elif kind == "C":
            self.handles.pop(int(f[1]), None)

    def _compact(self) -> None:
        """Rewrite the journal as its live records (caller holds the lock or is __init__)."""
        assert self._journal_path is not None
        tmp = f"{self._journal_path}.new"
        lines = [f"N\t{i}\t{_esc(p)}\n" for i, p in self._path.items() if i != ROOT]
        for h in self.handles.values():
            lines.append(f"H\t{h.fh}\t{h.kind}\t{h.flags}\t{_esc(h.path)}\n")
            if h.finished:
                lines.append(f"D\t{h.fh}\n")
        # (a forgotten node id or a released handle may be handed out again: the kernel
        # holds no reference to either any more)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.write(fd, "".join(lines).encode("utf-8", "surrogateescape"))
        os.replace(tmp, self._journal_path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._records = len(lines)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
