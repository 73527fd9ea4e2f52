"""What a scenario reads from: HDFS in-process, or a directory (mount or local disk).

Each scenario is written once against :class:`Target`, a deliberately tiny
"open / read / list / stat" interface, so the only thing that changes between
the ``direct``, ``mount-*`` and ``local`` modes is the object passed in.  Paths
given to a target are relative to the dataset root ("seq/shard-00000.tfrecord").

Two extra doors exist for scenarios that hand reading over to a library:

* :meth:`Target.arrow_filesystem` for ``pyarrow.dataset`` (a
  ``pyarrow.fs.PyFileSystem`` over the seam in direct mode);
* :meth:`Target.opener` for PyTorch ``DataLoader`` workers: a small picklable
  object that reconnects inside each worker process, because an HDFS client
  (sockets, a Rust runtime) must never cross a process boundary.
"""

from __future__ import annotations

import abc
import os
import posixpath
import stat as stat_mod
from dataclasses import dataclass
from typing import Any

from hdfs_client import HdfsClient, connect
from hdfs_client.base import HdfsReader


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool
    size: int


class Handle(abc.ABC):
    """One file open for reading front to back."""

    size: int

    @abc.abstractmethod
    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes from the current position; empty at end of file."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Opener(abc.ABC):
    """Picklable file reader for worker processes; connects lazily in the worker."""

    @abc.abstractmethod
    def read_file(self, rel: str) -> bytes: ...


class Target(abc.ABC):
    #: "hdfs" (in-process client) or "fs" (a directory: FUSE mount or local disk)
    kind: str

    @abc.abstractmethod
    def open(self, rel: str) -> Handle: ...

    @abc.abstractmethod
    def listdir(self, rel: str) -> list[Entry]: ...

    @abc.abstractmethod
    def stat(self, rel: str) -> Entry: ...

    @abc.abstractmethod
    def arrow_filesystem(self) -> tuple[Any, str]:
        """``(pyarrow.fs.FileSystem, base path)`` to hand to ``pyarrow.dataset``."""

    @abc.abstractmethod
    def opener(self) -> Opener: ...

    @abc.abstractmethod
    def describe(self) -> str: ...

    def read_file(self, rel: str, chunk: int = 1 << 20) -> bytes:
        with self.open(rel) as h:
            parts = []
            while True:
                b = h.read(chunk)
                if not b:
                    break
                parts.append(b)
            return b"".join(parts)


# -- a directory: FUSE mount or local disk -------------------------------------

class _FileHandle(Handle):
    def __init__(self, path: str):
        # unbuffered: every read() is one read(2), so what we time is what the
        # filesystem delivers, not Python's buffer
        self._f = open(path, "rb", buffering=0)  # noqa: SIM115
        self.size = os.fstat(self._f.fileno()).st_size

    def read(self, n: int) -> bytes:
        return self._f.read(n) or b""

    def close(self) -> None:
        self._f.close()


class _FsOpener(Opener):
    def __init__(self, root: str):
        self.root = root

    def read_file(self, rel: str) -> bytes:
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()


def _entry(name: str, st: os.stat_result) -> Entry:
    is_dir = stat_mod.S_ISDIR(st.st_mode)
    # directories report 0 like HDFS does, so listings compare across targets
    return Entry(name, is_dir, 0 if is_dir else st.st_size)


class FileSystemTarget(Target):
    kind = "fs"

    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def _p(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def open(self, rel: str) -> Handle:
        return _FileHandle(self._p(rel))

    def listdir(self, rel: str) -> list[Entry]:
        # scandir's d_type saves a stat per entry, as `ls` does; size needs
        # the stat anyway, which is what `ls -l` (and a dataset indexer) pays
        out = []
        with os.scandir(self._p(rel)) as it:
            for de in it:
                st = de.stat(follow_symlinks=False)
                out.append(_entry(de.name, st))
        return out

    def stat(self, rel: str) -> Entry:
        return _entry(os.path.basename(rel.rstrip("/")), os.stat(self._p(rel)))

    def arrow_filesystem(self) -> tuple[Any, str]:
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem(), self.root

    def opener(self) -> Opener:
        return _FsOpener(self.root)

    def describe(self) -> str:
        return self.root


# -- HDFS in-process through the seam ------------------------------------------

class _HdfsHandle(Handle):
    def __init__(self, reader: HdfsReader):
        self._r = reader
        self.size = reader.size
        self._pos = 0

    def read(self, n: int) -> bytes:
        if self._pos >= self.size:
            return b""
        b = self._r.read_range(self._pos, n)
        self._pos += len(b)
        return b

    def close(self) -> None:
        self._r.close()


class _HdfsOpener(Opener):
    def __init__(self, uri: str, root: str, connect_kwargs: dict[str, Any]):
        self.uri = uri
        self.root = root
        self.connect_kwargs = connect_kwargs
        self._client: HdfsClient | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None  # never pickle a live client into a worker
        return state

    def read_file(self, rel: str) -> bytes:
        if self._client is None:
            self._client = connect(self.uri, **self.connect_kwargs)
        return self._client.read_file(posixpath.join(self.root, rel))


class DirectTarget(Target):
    """HDFS read in-process through :class:`HdfsClient`: the ceiling a mount can reach."""

    kind = "hdfs"

    def __init__(self, client: HdfsClient, root: str, connect_kwargs: dict[str, Any] | None = None):
        self.client = client
        self.root = "/" + root.strip("/")
        self.connect_kwargs = dict(connect_kwargs or {})

    def _p(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel else self.root

    def open(self, rel: str) -> Handle:
        return _HdfsHandle(self.client.open_reader(self._p(rel)))

    def listdir(self, rel: str) -> list[Entry]:
        return [Entry(st.name, st.is_dir, st.length) for st in self.client.list_dir(self._p(rel))]

    def stat(self, rel: str) -> Entry:
        st = self.client.get_status(self._p(rel))
        return Entry(st.name, st.is_dir, st.length)

    def arrow_filesystem(self) -> tuple[Any, str]:
        import pyarrow.fs as pafs

        from benchmarks.arrowfs import HdfsArrowHandler

        return pafs.PyFileSystem(HdfsArrowHandler(self.client)), self.root

    def opener(self) -> Opener:
        return _HdfsOpener(self.client.uri, self.root, self.connect_kwargs)

    def describe(self) -> str:
        return f"{self.client.uri}{self.root}"
