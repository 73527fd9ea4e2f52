"""TFRecord framing, written and read without TensorFlow.

Why this exists: the benchmark's datasets (the ``seq`` shards, which the
``tfdata`` scenario reads with a real ``tf.data.TFRecordDataset``) must be
generated on machines where TensorFlow is not installed, and TensorFlow is an
optional extra of this project.  The format is small enough to write by hand:
each record is

    uint64 length (little endian)
    uint32 masked crc32c of those 8 length bytes
    bytes  data[length]
    uint32 masked crc32c of the data

where ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32)``
(TensorFlow's ``core/lib/hash/crc32c.h``; the mask keeps a CRC of data that
itself contains CRCs from looking like one).  The reader is the ``direct``
baseline's record splitter: there TensorFlow cannot open an ``hdfs://`` path
without a JVM-backed plugin, so the scenario splits records itself from bytes
read through our HDFS seam, checking both checksums as TensorFlow's reader
does.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterable, Iterator

import crc32c

HEADER = 12                 #: length (8) + its masked CRC (4)
OVERHEAD = HEADER + 4       #: framing bytes per record
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TensorFlow's masked CRC32C of ``data``."""
    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def frame(data: bytes | bytearray | memoryview) -> bytes:
    """One record: header, data, trailer."""
    length = struct.pack("<Q", len(data))
    return b"".join((length, struct.pack("<I", masked_crc32c(length)), bytes(data),
                     struct.pack("<I", masked_crc32c(data))))


def write_records(out: BinaryIO, records: Iterable[bytes]) -> int:
    """Write ``records`` to ``out`` as a TFRecord file; return the bytes written."""
    n = 0
    for r in records:
        b = frame(r)
        out.write(b)
        n += len(b)
    return n


class CorruptRecord(ValueError):
    """A record whose length or data does not match its checksum, or a cut-off file."""


class RecordSplitter:
    """Incremental reader: feed it bytes as they arrive, take whole records out.

    Streaming rather than whole-file, so a reader over a 256 MiB shard holds
    one read's worth of bytes, as TensorFlow's buffered reader does.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0       #: consumed bytes at the front of _buf, dropped on the next feed
        self._offset = 0    #: file offset of _buf[_pos] (for error messages)

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        """Append ``chunk``; return every record now complete (checksums checked)."""
        if self._pos:
            del self._buf[:self._pos]   # cheap: CPython trims a bytearray's front in place
            self._pos = 0
        self._buf += chunk
        out = []
        buf, pos = self._buf, 0
        # one view, released before returning: a bytearray with a live export cannot
        # be resized by the next feed()
        with memoryview(buf) as mv:
            while len(buf) - pos >= HEADER:
                (n,) = struct.unpack_from("<Q", buf, pos)
                (hcrc,) = struct.unpack_from("<I", buf, pos + 8)
                if hcrc != masked_crc32c(mv[pos:pos + 8]):
                    raise CorruptRecord(f"length checksum mismatch at offset "
                                        f"{self._offset + pos}")
                end = pos + HEADER + n + 4
                if len(buf) < end:
                    break
                data = bytes(mv[pos + HEADER:end - 4])
                (dcrc,) = struct.unpack_from("<I", buf, end - 4)
                if dcrc != masked_crc32c(data):
                    raise CorruptRecord(f"data checksum mismatch in the record at offset "
                                        f"{self._offset + pos}")
                out.append(data)
                pos = end
        self._pos = pos
        self._offset += pos
        return out

    def finish(self) -> None:
        """At end of file: anything left over is a truncated record."""
        left = len(self._buf) - self._pos
        if left:
            raise CorruptRecord(f"{left} bytes of a truncated record at the end of the file "
                                f"(offset {self._offset})")


def read_records(f: BinaryIO, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Every record of a TFRecord stream (for tests and small files)."""
    sp = RecordSplitter()
    while True:
        b = f.read(chunk)
        if not b:
            break
        yield from sp.feed(b)
    sp.finish()
