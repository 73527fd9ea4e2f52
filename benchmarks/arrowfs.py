"""A read-only ``pyarrow.fs`` filesystem over the :class:`HdfsClient` seam.

The ``parquet`` scenario's direct mode must read through our seam (the same
client the FUSE mount uses), not through pyarrow's own libhdfs/JVM binding,
otherwise "direct" would measure a different client.  pyarrow lets Python
supply a filesystem through ``FileSystemHandler``; only what a dataset scan
needs (info, listing, random-access input files) is implemented, writes raise.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from hdfs_client import HdfsClient
from hdfs_client.base import FileStatus, HdfsReader
from hdfs_client.errors import NotFound


def _info(st: FileStatus) -> pafs.FileInfo:
    kind = pafs.FileType.Directory if st.is_dir else pafs.FileType.File
    return pafs.FileInfo(st.path, kind, size=None if st.is_dir else st.length,
                         mtime_ns=st.mtime_ms * 1_000_000)


class HdfsArrowHandler(pafs.FileSystemHandler):
    def __init__(self, client: HdfsClient):
        self.client = client

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HdfsArrowHandler) and other.client is self.client

    def __ne__(self, other: object) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return "hdfs-csi-seam"

    def normalize_path(self, path: str) -> str:
        return "/" + path.strip("/")

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        out = []
        for p in paths:
            try:
                out.append(_info(self.client.get_status(self.normalize_path(p))))
            except NotFound:
                out.append(pafs.FileInfo(p, pafs.FileType.NotFound))
        return out

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        base = self.normalize_path(selector.base_dir)
        try:
            children = list(self.client.list_dir(base))
        except NotFound:
            if selector.allow_not_found:
                return []
            raise FileNotFoundError(base) from None
        out = []
        for st in children:
            out.append(_info(st))
            if st.is_dir and selector.recursive:
                out.extend(self.get_file_info_selector(
                    pafs.FileSelector(st.path, allow_not_found=True, recursive=True)))
        return out

    def open_input_file(self, path: str) -> Any:
        raw = HdfsRawFile(self.client.open_reader(self.normalize_path(path)))
        return pa.PythonFile(raw, mode="r")

    def open_input_stream(self, path: str) -> Any:
        return self.open_input_file(path)

    def _read_only(self, *args: object, **kwargs: object) -> Any:
        raise NotImplementedError("the benchmark filesystem is read-only")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only


class HdfsRawFile(io.RawIOBase):
    """A seekable read-only file object over an :class:`HdfsReader` (for pyarrow)."""

    def __init__(self, reader: HdfsReader):
        super().__init__()
        self._r = reader
        self._pos = 0
        self.size = reader.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        data = self._r.read_range(self._pos, len(view)) if self._pos < self.size else b""
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._pos
        data = self._r.read_range(self._pos, n) if self._pos < self.size and n > 0 else b""
        self._pos += len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            self._r.close()
        super().close()
