"""First-contact checks: the fixtures work and hdfs-native can do the basics."""

from __future__ import annotations

import os

import pytest

from hdfs_client import errors


def test_fixture_cluster_roundtrip(hdfs, dfs) -> None:
    assert dfs.uri.startswith("hdfs://127.0.0.1:")
    hdfs.mkdirs("/smoke/dir")
    data = os.urandom(2 * 1024 * 1024 + 17)  # three 1 MiB blocks
    hdfs.write_file("/smoke/dir/f.bin", data)
    st = hdfs.get_status("/smoke/dir/f.bin")
    assert st.length == len(data) and not st.is_dir and st.block_size == 1024 * 1024
    assert hdfs.read_file("/smoke/dir/f.bin") == data
    assert [s.name for s in hdfs.list_dir("/smoke/dir")] == ["f.bin"]
    with pytest.raises(errors.NotFound):
        hdfs.get_status("/smoke/missing")


def test_factory_starts_independent_clusters(minidfs_factory) -> None:
    from hdfs_client import connect

    a = minidfs_factory(datanodes=2)
    b = minidfs_factory()
    assert a.uri != b.uri
    with connect(a.uri) as ca, connect(b.uri) as cb:
        ca.write_file("/x", b"a")
        assert not cb.exists("/x")
        assert ca.get_status("/x").replication == 2
