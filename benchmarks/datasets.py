"""Seeded, reproducible benchmark datasets, and putting them where they are read.

A dataset root holds one directory per *part* (``seq``, ``small``, ``meta``,
``parquet``) and a ``MANIFEST.json`` recording, per part, the seed, the
sizes that produced it (its spec) and every file with its size and CRC32C.
The same bytes are generated from the same seed on every machine, so a local
copy and the HDFS copy can be compared by manifest alone, and a second run
regenerates or re-uploads only the parts whose manifest differs: preparing
the full dataset once costs minutes, reusing it costs a listing.

Where data goes is a :class:`Store`: a local directory (the ``local``
reference copy, or a writable existing mount) or an HDFS directory reached
through the :class:`hdfs_client.HdfsClient` seam.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import logging
import os
import posixpath
import shutil
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import crc32c
import numpy as np

from hdfs_client import HdfsClient
from hdfs_client.errors import NotFound

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
FORMAT = 1
PARTS = ("seq", "small", "meta", "parquet")
#: which dataset part each scenario reads
SCENARIO_PART = {"seq": "seq", "small": "small", "meta": "meta", "dataloader": "small",
                 "parquet": "parquet", "tfdata": "seq"}


# -- specs ----------------------------------------------------------------------

@dataclass(frozen=True)
class SeqSpec:
    """Large shards read front to back (TFRecord framing, ~image-sized records)."""
    shards: int
    shard_bytes: int
    record_bytes: int = 110_000


@dataclass(frozen=True)
class SmallSpec:
    """ImageNet-like tree: ``train/<class>/<image>.JPEG``, sizes log-normal around the mean."""
    classes: int
    files_per_class: int
    mean_bytes: int = 110_000


@dataclass(frozen=True)
class MetaSpec:
    """A wide directory and a deep tree of empty files: pure NameNode/metadata work."""
    wide_files: int
    deep_depth: int
    deep_fanout: int
    files_per_leaf: int = 2


@dataclass(frozen=True)
class ParquetSpec:
    files: int
    rows_per_file: int
    payload_bytes: int = 1000      #: incompressible binary column per row
    row_group_rows: int = 1024


@dataclass(frozen=True)
class DataSpec:
    seq: SeqSpec
    small: SmallSpec
    meta: MetaSpec
    parquet: ParquetSpec

    def part(self, name: str) -> Any:
        return getattr(self, name)

    def scaled(self, scale: float) -> "DataSpec":
        """Shrink (or grow) counts and sizes; for tests that need a tiny dataset."""
        if scale == 1.0:
            return self

        def s(n: int, lo: int = 1) -> int:
            return max(lo, int(round(n * scale)))

        return DataSpec(
            seq=dataclasses.replace(self.seq, shard_bytes=s(self.seq.shard_bytes, 1 << 16)),
            small=dataclasses.replace(self.small, files_per_class=s(self.small.files_per_class)),
            meta=dataclasses.replace(self.meta, wide_files=s(self.meta.wide_files, 10)),
            parquet=dataclasses.replace(self.parquet,
                                        rows_per_file=s(self.parquet.rows_per_file, 100)),
        )


TIERS: dict[str, DataSpec] = {
    # a few hundred MB at most: generation + upload + 4 modes fit the 2-minute budget
    "quick": DataSpec(
        seq=SeqSpec(shards=4, shard_bytes=16 << 20),
        small=SmallSpec(classes=10, files_per_class=40),
        meta=MetaSpec(wide_files=500, deep_depth=3, deep_fanout=5),
        parquet=ParquetSpec(files=4, rows_per_file=4000),
    ),
    "full": DataSpec(
        seq=SeqSpec(shards=4, shard_bytes=256 << 20),
        small=SmallSpec(classes=50, files_per_class=100),
        meta=MetaSpec(wide_files=10_000, deep_depth=4, deep_fanout=5),
        parquet=ParquetSpec(files=8, rows_per_file=32_000),
    ),
}


def spec_dict(part: str, spec: DataSpec, seed: int) -> dict[str, Any]:
    """What identifies a part's content: change any of it and the part is regenerated."""
    d: dict[str, Any] = {"part": part, "seed": seed, **dataclasses.asdict(spec.part(part))}
    if part == "parquet":
        import pyarrow

        # Parquet bytes embed the writer's version; a new pyarrow means new bytes
        d["pyarrow"] = pyarrow.__version__
    return d


# -- deterministic content ----------------------------------------------------------

_PART_IDS = {p: i + 1 for i, p in enumerate(PARTS)}


def _rng(seed: int, part: str, index: int) -> np.random.Generator:
    # PCG64's raw output is fixed by its definition, so the bytes do not drift
    # with numpy releases (Generator methods' outputs may)
    return np.random.Generator(np.random.PCG64([seed, _PART_IDS[part], index]))


def random_bytes(seed: int, part: str, index: int, n: int) -> bytes:
    words = _rng(seed, part, index).bit_generator.random_raw((n + 7) // 8)
    return words.astype("<u8", copy=False).tobytes()[:n]


def _masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_shard(seed: int, index: int, size: int, record_bytes: int) -> bytes:
    """A valid TFRecord file of exactly ``size`` bytes (the last record absorbs the rest)."""
    payload = random_bytes(seed, "seq", index, size)
    out = bytearray()
    pos = 0
    while size - len(out) > 16:
        left = size - len(out) - 16
        n = record_bytes if left - record_bytes > 16 + 1 else left
        header = struct.pack("<Q", n)
        data = payload[pos:pos + n]
        pos += n
        out += header + struct.pack("<I", _masked_crc(header))
        out += data + struct.pack("<I", _masked_crc(data))
    out += b"\0" * (size - len(out))  # only for sizes < 17 bytes
    return bytes(out)


def small_file_sizes(spec: SmallSpec, seed: int) -> list[int]:
    # ImageNet JPEGs: median ~110 KB, long tail; log-normal with sigma 0.5, clipped
    n = spec.classes * spec.files_per_class
    raw = _rng(seed, "small", 0).bit_generator.random_raw(2 * n)
    u = (raw.astype(np.float64) + 0.5) / 2.0**64
    z = np.sqrt(-2 * np.log(u[:n])) * np.cos(2 * np.pi * u[n:])  # Box-Muller
    sizes = np.clip(np.exp(np.log(spec.mean_bytes) - 0.125 + 0.5 * z), 8_000, 1_000_000)
    return [int(x) for x in sizes]


def small_files(spec: SmallSpec, seed: int) -> list[tuple[str, int]]:
    sizes = small_file_sizes(spec, seed)
    out = []
    for c in range(spec.classes):
        for i in range(spec.files_per_class):
            idx = c * spec.files_per_class + i
            out.append((f"small/train/n{c:08d}/n{c:08d}_{idx:06d}.JPEG", sizes[idx]))
    return out


def meta_files(spec: MetaSpec) -> list[str]:
    files = [f"meta/wide/f-{i:06d}" for i in range(spec.wide_files)]

    def walk(prefix: str, depth: int) -> Iterator[str]:
        if depth == spec.deep_depth:
            for j in range(spec.files_per_leaf):
                yield f"{prefix}/leaf-{j}"
            return
        for k in range(spec.deep_fanout):
            yield from walk(f"{prefix}/d{depth}-{k}", depth + 1)

    files.extend(walk("meta/deep", 0))
    return files


def parquet_table(spec: ParquetSpec, seed: int, index: int) -> Any:
    import pyarrow as pa

    n = spec.rows_per_file
    rng = _rng(seed, "parquet", index)
    raw = rng.bit_generator.random_raw(n * 9)
    ids = np.arange(index * n, (index + 1) * n, dtype=np.int64)
    labels = (raw[:n] % 1000).astype(np.int32)
    feats = {f"x{k}": ((raw[n * (k + 1):n * (k + 2)] >> 40).astype(np.float32) / 2.0**24)
             for k in range(8)}
    blob = random_bytes(seed, "parquet", 1_000_000 + index, n * spec.payload_bytes)
    offsets = np.arange(0, (n + 1) * spec.payload_bytes, spec.payload_bytes, dtype=np.int32)
    payload = pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                           pa.py_buffer(blob)])
    return pa.table({"id": ids, "label": labels, **feats, "payload": payload})


# -- generation into a local directory ---------------------------------------------------

def _write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def generate_part(root: str, part: str, spec: DataSpec, seed: int,
                  progress: Callable[[int], None] | None = None) -> dict[str, list[Any]]:
    """Write one part under ``root``; return its file table ``{rel: [size, crc32c-hex]}``."""
    files: dict[str, list[Any]] = {}

    def put(rel: str, data: bytes) -> None:
        _write_atomic(os.path.join(root, rel), data)
        files[rel] = [len(data), f"{crc32c.crc32c(data):08x}"]
        if progress:
            progress(len(data) or 1)  # empty files (meta) count one unit each

    if part == "seq":
        s = spec.seq
        for i in range(s.shards):
            put(f"seq/shard-{i:05d}-of-{s.shards:05d}.tfrecord",
                tfrecord_shard(seed, i, s.shard_bytes, s.record_bytes))
    elif part == "small":
        for i, (rel, size) in enumerate(small_files(spec.small, seed)):
            put(rel, random_bytes(seed, "small", i + 1, size))
    elif part == "meta":
        for rel in meta_files(spec.meta):
            put(rel, b"")
    elif part == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        p = spec.parquet
        for i in range(p.files):
            sink = pa.BufferOutputStream()
            pq.write_table(parquet_table(p, seed, i), sink, row_group_size=p.row_group_rows,
                           compression="snappy")
            put(f"parquet/part-{i:05d}.parquet", sink.getvalue().to_pybytes())
    else:
        raise ValueError(f"unknown dataset part {part!r}")
    return files


# -- stores ----------------------------------------------------------------------------------

class Store(abc.ABC):
    """A place a dataset root lives: local directory or HDFS directory."""

    #: verify file sizes by listing (off for an existing mount: listing would warm it)
    list_to_verify: bool = True

    @abc.abstractmethod
    def read_manifest(self) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def write_manifest(self, manifest: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def sizes(self, part: str) -> dict[str, int]:
        """``{rel: size}`` of every file under the part directory (empty if absent)."""

    @abc.abstractmethod
    def remove_part(self, part: str) -> None: ...

    @abc.abstractmethod
    def put_files(self, src_root: str, rels: list[str],
                  progress: Callable[[int], None] | None = None) -> None:
        """Copy files (relative paths) from a local dataset root into this store."""

    @abc.abstractmethod
    def describe(self) -> str: ...


class DirStore(Store):
    def __init__(self, root: str, *, list_to_verify: bool = True):
        self.root = os.path.abspath(root)
        self.list_to_verify = list_to_verify

    def read_manifest(self) -> dict[str, Any] | None:
        try:
            with open(os.path.join(self.root, MANIFEST), encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        _write_atomic(os.path.join(self.root, MANIFEST),
                      json.dumps(manifest, indent=1, sort_keys=True).encode())

    def sizes(self, part: str) -> dict[str, int]:
        out = {}
        base = os.path.join(self.root, part)
        for dirpath, _dirs, names in os.walk(base):
            for n in names:
                full = os.path.join(dirpath, n)
                out[os.path.relpath(full, self.root)] = os.path.getsize(full)
        return out

    def remove_part(self, part: str) -> None:
        shutil.rmtree(os.path.join(self.root, part), ignore_errors=True)

    def put_files(self, src_root: str, rels: list[str],
                  progress: Callable[[int], None] | None = None) -> None:
        for rel in rels:
            dst = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(os.path.join(src_root, rel), dst)
            if progress:
                progress(os.path.getsize(dst) or 1)

    def describe(self) -> str:
        return self.root


class HdfsStore(Store):
    """A dataset root on HDFS; uploads run on a few threads (the client is thread-safe)."""

    def __init__(self, client: HdfsClient, root: str, *, threads: int = 4):
        self.client = client
        self.root = "/" + root.strip("/")
        self.threads = threads

    def _p(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def read_manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.client.read_file(self._p(MANIFEST)))
        except (NotFound, json.JSONDecodeError):
            return None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        # write then rename, so a reader never sees half a manifest
        tmp = self._p(MANIFEST + ".tmp")
        self.client.write_file(tmp, json.dumps(manifest, indent=1, sort_keys=True).encode())
        self.client.rename(tmp, self._p(MANIFEST), overwrite=True)

    def sizes(self, part: str) -> dict[str, int]:
        out: dict[str, int] = {}
        stack = [self._p(part)]
        prefix = self.root.rstrip("/") + "/"
        while stack:
            d = stack.pop()
            try:
                children = list(self.client.list_dir(d))
            except NotFound:
                continue
            for st in children:
                if st.is_dir:
                    stack.append(st.path)
                else:
                    out[st.path[len(prefix):]] = st.length
        return out

    def remove_part(self, part: str) -> None:
        self.client.delete(self._p(part), recursive=True)

    def put_files(self, src_root: str, rels: list[str],
                  progress: Callable[[int], None] | None = None) -> None:
        dirs = sorted({posixpath.dirname(r) for r in rels})
        for d in _leaf_dirs(dirs):
            self.client.mkdirs(self._p(d))

        def one(rel: str) -> int:
            with open(os.path.join(src_root, rel), "rb") as f:
                data = f.read()
            self.client.write_file(self._p(rel), data, overwrite=True, create_parent=False)
            return len(data)

        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for n in pool.map(one, rels):
                if progress:
                    progress(n or 1)

    def describe(self) -> str:
        return f"{self.client.uri}{self.root}"


def _leaf_dirs(dirs: Iterable[str]) -> list[str]:
    """Directories not a prefix of another (mkdirs -p creates the rest)."""
    ds = sorted(set(dirs))
    return [d for i, d in enumerate(ds)
            if not (i + 1 < len(ds) and ds[i + 1].startswith(d + "/"))]


# -- preparing --------------------------------------------------------------------------------

@dataclass
class PartStatus:
    part: str
    action: str      #: "reused" or "generated" / "uploaded"
    files: int
    bytes: int


def _part_ok(store: Store, manifest: dict[str, Any] | None, part: str,
             want_spec: dict[str, Any], want_files: dict[str, list[Any]] | None) -> bool:
    if not manifest or manifest.get("format") != FORMAT:
        return False
    entry = manifest.get("parts", {}).get(part)
    if not entry or entry.get("spec") != want_spec:
        return False
    if want_files is not None and entry.get("files") != want_files:
        return False
    if not store.list_to_verify:
        return True
    have = store.sizes(part)
    return have == {rel: v[0] for rel, v in entry["files"].items()}


def _verify_checksums(root: str, files: dict[str, list[Any]]) -> bool:
    for rel, (_size, crc) in files.items():
        try:
            with open(os.path.join(root, rel), "rb") as f:
                if f"{crc32c.crc32c(f.read()):08x}" != crc:
                    log.warning("checksum mismatch in %s; regenerating", rel)
                    return False
        except OSError:
            return False
    return True


def prepare_local(root: str, parts: Iterable[str], spec: DataSpec, seed: int,
                  progress_factory: Callable[[str, int], Any] | None = None) -> list[PartStatus]:
    """Make sure ``root`` holds the wanted parts; regenerate only what differs."""
    store = DirStore(root)
    manifest = store.read_manifest() or {"format": FORMAT, "parts": {}}
    if manifest.get("format") != FORMAT:
        manifest = {"format": FORMAT, "parts": {}}
    out = []
    for part in parts:
        want = spec_dict(part, spec, seed)
        entry = manifest["parts"].get(part)
        if _part_ok(store, manifest, part, want, None) and _verify_checksums(root, entry["files"]):
            out.append(PartStatus(part, "reused", len(entry["files"]), _bytes(entry["files"])))
            continue
        store.remove_part(part)
        total = expected_bytes(part, spec)
        bar = progress_factory(f"generate {part}", total) if progress_factory else None
        try:
            files = generate_part(root, part, spec, seed, bar.update if bar else None)
        finally:
            if bar:
                bar.close()
        manifest["parts"][part] = {"spec": want, "files": files}
        store.write_manifest(manifest)
        out.append(PartStatus(part, "generated", len(files), _bytes(files)))
    return out


def sync_store(local_root: str, store: Store, parts: Iterable[str],
               progress_factory: Callable[[str, int], Any] | None = None) -> list[PartStatus]:
    """Copy parts from the local root to ``store`` unless its manifest already matches."""
    local = DirStore(local_root).read_manifest()
    if not local:
        raise RuntimeError(f"no manifest in {local_root}; prepare the local copy first")
    remote = store.read_manifest() or {"format": FORMAT, "parts": {}}
    if remote.get("format") != FORMAT:
        remote = {"format": FORMAT, "parts": {}}
    out = []
    for part in parts:
        entry = local["parts"][part]
        if _part_ok(store, remote, part, entry["spec"], entry["files"]):
            out.append(PartStatus(part, "reused", len(entry["files"]), _bytes(entry["files"])))
            continue
        # drop the manifest entry first: an interrupted upload must not look complete
        remote["parts"].pop(part, None)
        store.write_manifest(remote)
        store.remove_part(part)
        units = _bytes(entry["files"]) or len(entry["files"])
        bar = progress_factory(f"upload {part}", units) if progress_factory else None
        try:
            store.put_files(local_root, sorted(entry["files"]), bar.update if bar else None)
        finally:
            if bar:
                bar.close()
        remote["parts"][part] = entry
        store.write_manifest(remote)
        out.append(PartStatus(part, "uploaded", len(entry["files"]), _bytes(entry["files"])))
    return out


def _bytes(files: dict[str, list[Any]]) -> int:
    return sum(v[0] for v in files.values())


def expected_bytes(part: str, spec: DataSpec) -> int:
    """Roughly how many bytes a part holds (for progress bars before it exists);
    for ``meta``, whose files are empty, the number of files."""
    if part == "seq":
        return spec.seq.shards * spec.seq.shard_bytes
    if part == "small":
        return spec.small.classes * spec.small.files_per_class * spec.small.mean_bytes
    if part == "meta":
        return len(meta_files(spec.meta))
    p = spec.parquet
    return p.files * p.rows_per_file * (p.payload_bytes + 48)


def part_files(root_manifest: dict[str, Any], part: str) -> dict[str, list[Any]]:
    """``{rel: [size, crc]}`` of one part, from a manifest."""
    return root_manifest["parts"][part]["files"]
