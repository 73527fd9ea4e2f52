"""The direct target and the HDFS store against a real minidfs (over real sockets)."""

import os
import uuid

import pyarrow.dataset as pads
import pytest

from benchmarks import datasets as ds
from benchmarks.targets import DirectTarget, FileSystemTarget

TINY = ds.TIERS["quick"].scaled(0.05)


@pytest.fixture(scope="module")
def local_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-local")
    ds.prepare_local(str(root), ds.PARTS, TINY, 11)
    return str(root)


@pytest.fixture
def hdfs_root(hdfs):
    root = f"/bench-test/{uuid.uuid4().hex[:8]}"
    yield root
    hdfs.delete(root, recursive=True)


@pytest.mark.timeout(120)
def test_upload_then_reuse_then_repair(hdfs, hdfs_root, local_copy):
    store = ds.HdfsStore(hdfs, hdfs_root)
    first = {s.part: s.action for s in ds.sync_store(local_copy, store, ds.PARTS)}
    assert set(first.values()) == {"uploaded"}
    manifest = store.read_manifest()
    assert manifest["parts"] == ds.DirStore(local_copy).read_manifest()["parts"]
    again = {s.part: s.action for s in ds.sync_store(local_copy, store, ds.PARTS)}
    assert set(again.values()) == {"reused"}
    # a file that vanished on HDFS is noticed by the listing and re-uploaded
    victim = sorted(manifest["parts"]["small"]["files"])[3]
    hdfs.delete(f"{hdfs_root}/{victim}")
    third = {s.part: s.action for s in ds.sync_store(local_copy, store, ["small", "seq"])}
    assert third == {"small": "uploaded", "seq": "reused"}
    assert hdfs.get_status(f"{hdfs_root}/{victim}").length == \
        manifest["parts"]["small"]["files"][victim][0]


@pytest.mark.timeout(120)
def test_direct_target_sees_what_local_disk_sees(hdfs, hdfs_root, local_copy):
    ds.sync_store(local_copy, ds.HdfsStore(hdfs, hdfs_root), ["seq", "small", "meta"])
    direct = DirectTarget(hdfs, hdfs_root)
    local = FileSystemTarget(local_copy)
    for rel in ["seq/shard-00000-of-00004.tfrecord",
                sorted(os.listdir(os.path.join(local_copy, "small/train")))[0]]:
        if not rel.startswith("seq"):
            d = f"small/train/{rel}"
            rel = f"{d}/{sorted(os.listdir(os.path.join(local_copy, d)))[0]}"
        assert direct.read_file(rel, chunk=65536) == local.read_file(rel)
        assert direct.stat(rel) == local.stat(rel)
    def names(t, d):
        return sorted((e.name, e.is_dir, e.size) for e in t.listdir(d))
    assert names(direct, "meta/wide") == names(local, "meta/wide")
    assert names(direct, "meta/deep") == names(local, "meta/deep")
    # the DataLoader opener reconnects by URI (as a worker process would)
    opener = direct.opener()
    import pickle
    clone = pickle.loads(pickle.dumps(opener))
    rel = "seq/shard-00001-of-00004.tfrecord"
    assert clone.read_file(rel) == local.read_file(rel)


@pytest.mark.timeout(120)
def test_pyarrow_dataset_reads_through_the_seam(hdfs, hdfs_root, local_copy):
    ds.sync_store(local_copy, ds.HdfsStore(hdfs, hdfs_root), ["parquet"])
    fs, base = DirectTarget(hdfs, hdfs_root).arrow_filesystem()
    remote = pads.dataset(f"{base}/parquet", format="parquet", filesystem=fs).to_table()
    lfs, lbase = FileSystemTarget(local_copy).arrow_filesystem()
    here = pads.dataset(f"{lbase}/parquet", format="parquet", filesystem=lfs).to_table()
    assert remote.num_rows == here.num_rows == TINY.parquet.files * TINY.parquet.rows_per_file
    assert remote.sort_by("id").equals(here.sort_by("id"))


@pytest.mark.timeout(180)
def test_remote_profile_slows_minidfs_down(tmp_path):
    # remote-1g adds 1 ms to every NameNode RPC: a direct stat cannot answer faster
    import json
    import subprocess
    import sys

    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "hdfs_csi", "bench", "--quick", "--scale", "0.05", "--scenarios",
         "meta", "--modes", "direct", "--profile", "remote-1g", "--data-dir", str(tmp_path / "d"),
         "--json", str(out), "--plot", str(tmp_path / "r.png"), "--no-progress"],
        capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["options"]["profile"] == "remote-1g"
    assert doc["options"]["profile_detail"]["latency_s"] == 0.001
    (res,) = doc["results"]
    assert res["status"] == "ok", res["reason"]
    assert res["metrics"]["latency_p50_ms"] >= 1.0


@pytest.mark.timeout(180)
def test_existing_cluster_via_hdfs_uri(tmp_path, dfs, hdfs):
    # --hdfs-uri: no minidfs of our own, data uploaded under --hdfs-path, direct measured
    import json
    import subprocess
    import sys

    from bench_kit import check_document

    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "hdfs_csi", "bench", "--quick", "--scale", "0.05", "--scenarios",
         "seq,parquet", "--modes", "local,direct", "--hdfs-uri", dfs.uri, "--hdfs-path",
         "/elsewhere", "--data-dir", str(tmp_path / "d"), "--json", str(out),
         "--plot", str(tmp_path / "r.png"), "--no-progress"],
        capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    check_document(doc, ["seq", "parquet"], ["local", "direct"])
    assert doc["environment"]["minidfs"] is False
    assert hdfs.exists("/elsewhere/quick-x0.05/MANIFEST.json")
    assert not (tmp_path / "d" / "minidfs").exists()
