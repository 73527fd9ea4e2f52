"""Seeded generation, the manifest, and regenerating only what differs."""

import dataclasses
import json
import os
import struct

import crc32c
import pyarrow.parquet as pq
import pytest

from benchmarks import datasets as ds

TINY = ds.TIERS["quick"].scaled(0.05)


def _prep(root, parts=ds.PARTS, spec=TINY, seed=7):
    return {s.part: s.action for s in ds.prepare_local(str(root), parts, spec, seed)}


def _manifest(root):
    with open(os.path.join(root, ds.MANIFEST)) as f:
        return json.load(f)


def test_same_seed_gives_identical_bytes_in_two_places(tmp_path):
    _prep(tmp_path / "a")
    _prep(tmp_path / "b")
    a, b = _manifest(tmp_path / "a"), _manifest(tmp_path / "b")
    assert a == b
    assert set(a["parts"]) == set(ds.PARTS)
    assert sum(len(p["files"]) for p in a["parts"].values()) > 20


def test_different_seed_gives_different_content(tmp_path):
    _prep(tmp_path / "a", parts=["seq"], seed=1)
    _prep(tmp_path / "b", parts=["seq"], seed=2)
    fa = _manifest(tmp_path / "a")["parts"]["seq"]["files"]
    fb = _manifest(tmp_path / "b")["parts"]["seq"]["files"]
    assert fa.keys() == fb.keys()
    assert all(fa[k][1] != fb[k][1] for k in fa)


def test_second_prepare_reuses_without_rewriting(tmp_path):
    assert set(_prep(tmp_path).values()) == {"generated"}
    shard = next(p for p in (tmp_path / "seq").iterdir())
    mtime = shard.stat().st_mtime_ns
    assert set(_prep(tmp_path).values()) == {"reused"}
    assert shard.stat().st_mtime_ns == mtime


def test_corrupted_or_missing_file_regenerates_only_its_part(tmp_path):
    _prep(tmp_path)
    victim = sorted((tmp_path / "small").rglob("*.JPEG"))[0]
    data = bytearray(victim.read_bytes())
    data[0] ^= 0xFF
    victim.write_bytes(bytes(data))
    (tmp_path / "meta" / "wide" / "f-000000").unlink()
    actions = _prep(tmp_path)
    assert actions == {"seq": "reused", "small": "generated", "meta": "generated",
                       "parquet": "reused"}
    files = _manifest(tmp_path)["parts"]["small"]["files"]
    rel = os.path.relpath(victim, tmp_path)
    assert f"{crc32c.crc32c(victim.read_bytes()):08x}" == files[rel][1]


def test_changed_sizes_regenerate(tmp_path):
    _prep(tmp_path, parts=["seq"])
    more_shards = dataclasses.replace(TINY.seq, shards=TINY.seq.shards + 1)
    bigger = dataclasses.replace(TINY, seq=more_shards)
    assert _prep(tmp_path, parts=["seq"], spec=bigger) == {"seq": "generated"}
    assert len(list((tmp_path / "seq").iterdir())) == TINY.seq.shards + 1


def test_tfrecord_shards_are_valid_and_exact_size():
    data = ds.tfrecord_shard(3, 0, 300_000, 50_000)
    assert len(data) == 300_000
    pos = records = 0
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        (hcrc,) = struct.unpack_from("<I", data, pos + 8)
        assert hcrc == ds._masked_crc(data[pos:pos + 8])
        payload = data[pos + 12:pos + 12 + n]
        (dcrc,) = struct.unpack_from("<I", data, pos + 12 + n)
        assert dcrc == ds._masked_crc(payload)
        pos += 16 + n
        records += 1
    assert pos == len(data) and records >= 6


def test_small_file_sizes_look_like_imagenet():
    spec = ds.SmallSpec(classes=20, files_per_class=50)
    sizes = ds.small_file_sizes(spec, 42)
    mean = sum(sizes) / len(sizes)
    assert 90_000 < mean < 130_000
    assert min(sizes) >= 8_000 and max(sizes) <= 1_000_000
    assert len(set(sizes)) > len(sizes) // 2


def test_parquet_part_is_readable(tmp_path):
    _prep(tmp_path, parts=["parquet"])
    files = sorted((tmp_path / "parquet").iterdir())
    assert len(files) == TINY.parquet.files
    t = pq.read_table(files[0])
    assert t.num_rows == TINY.parquet.rows_per_file
    assert "payload" in t.column_names


def test_sync_store_copies_then_reuses(tmp_path):
    _prep(tmp_path / "src", parts=["seq", "meta"])
    dst = ds.DirStore(str(tmp_path / "dst"))
    first = {s.part: s.action for s in ds.sync_store(str(tmp_path / "src"), dst, ["seq", "meta"])}
    assert first == {"seq": "uploaded", "meta": "uploaded"}
    assert dst.read_manifest()["parts"] == _manifest(tmp_path / "src")["parts"]
    again = {s.part: s.action for s in ds.sync_store(str(tmp_path / "src"), dst, ["seq", "meta"])}
    assert again == {"seq": "reused", "meta": "reused"}
    # a file lost at the destination is noticed by the size check
    next((tmp_path / "dst" / "seq").iterdir()).unlink()
    third = {s.part: s.action for s in ds.sync_store(str(tmp_path / "src"), dst, ["seq"])}
    assert third == {"seq": "uploaded"}


def test_sync_store_requires_a_prepared_source(tmp_path):
    with pytest.raises(RuntimeError, match="prepare"):
        ds.sync_store(str(tmp_path / "nothing"), ds.DirStore(str(tmp_path / "d")), ["seq"])
