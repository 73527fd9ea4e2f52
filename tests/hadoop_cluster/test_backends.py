"""hdfs_backends and the JVM-free parts of hadoop_cluster (default tier: no JVM here).

The backend chooser must hand out one shape for both backends, refuse what a
backend cannot do loudly (a test must never silently lose HA or erasure
coding), and say why the ``hadoop`` backend cannot run when it cannot.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest

from hadoop_cluster import siteconf, toolchain
import hdfs_backends as backends


def test_backend_names_and_unknown_names() -> None:
    assert backends.BACKENDS == ("minidfs", "hadoop")
    assert backends.backend_unavailable("minidfs") is None
    with pytest.raises(ValueError, match="unknown HDFS backend"):
        backends.backend_unavailable("hdfs3")
    with pytest.raises(ValueError, match="unknown HDFS backend"):
        backends.start_backend("nope")


def test_minidfs_backend_has_the_common_shape(tmp_path: Path, _hadoop_env_cleared: None) -> None:
    with backends.start_backend("minidfs", tmp_path / "m", datanodes=2, block_size=1 << 20) as b:
        assert b.backend == "minidfs"
        assert b.uri.startswith("hdfs://127.0.0.1:") and b.namenode_uris == [b.uri]
        assert len(b.datanode_addresses) == b.num_datanodes == 2
        assert b.block_size == 1 << 20 and b.superuser == getpass.getuser()
        assert b.client_config == {"fs.defaultFS": b.uri}
        core = Path(b.hadoop_conf_dir, "core-site.xml").read_text()
        assert f"<name>fs.defaultFS</name><value>{b.uri}</value>" in core
        assert b.faults is b.impl.faults        # minidfs internals still reachable
        client = backends.connect(b)
        client.write_file("/x/f", b"payload" * 1000)
        b.stop_datanode(0)
        assert client.read_file("/x/f") == b"payload" * 1000
        b.start_datanode(0)
        with pytest.raises(backends.BackendUnsupported, match="HA"):
            b.failover()
        with pytest.raises(backends.BackendUnsupported, match="erasure"):
            b.set_ec_policy("/ec", "RS-3-2-1024k")
        client.close()


def test_minidfs_backend_as_a_process(tmp_path: Path, _hadoop_env_cleared: None) -> None:
    b = backends.start_backend("minidfs", tmp_path / "p", process=True,
                               log_file=str(tmp_path / "p.log"))
    try:
        assert b.running() and b.backend == "minidfs"
        with backends.connect(b) as client:
            client.write_file("/f", b"child")
            assert client.read_file("/f") == b"child"
    finally:
        b.stop()
    assert not b.running()


def test_keywords_a_backend_lacks_are_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        backends.start_backend("minidfs", tmp_path / "m", ha=True)


def test_skip_reason_names_the_missing_tool(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))    # no java, javac or mvn here
    reason = backends.backend_unavailable("hadoop")
    assert reason is not None and "`java` not found" in reason and "JDK" in reason
    monkeypatch.setenv("HADOOP_JARS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("PATH", os.defpath + os.pathsep + "/usr/local/bin")
    reason = toolchain.skip_reason()
    assert reason is not None
    assert ("HADOOP_JARS_DIR" in reason and "fetch-hadoop.sh" in reason) or "JDK" in reason


def test_cache_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HADOOP_JARS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert toolchain.jars_dir() == tmp_path / "hdfs-csi" / "hadoop" / "jars"
    assert toolchain.maven_repo() == tmp_path / "hdfs-csi" / "m2"
    assert not toolchain.jars_current() and toolchain.client_jars() is None


def test_site_files_split_and_escape(tmp_path: Path) -> None:
    conf = {"fs.defaultFS": "hdfs://ns", "dfs.ha.namenodes.ns": "nn1,nn2",
            "x.weird": "a<b&c"}
    siteconf.write_conf_dir(str(tmp_path), conf)
    core = (tmp_path / "core-site.xml").read_text()
    hdfs = (tmp_path / "hdfs-site.xml").read_text()
    assert "fs.defaultFS" in core and "dfs.ha" not in core
    assert "dfs.ha.namenodes.ns" in hdfs and "<value>a&lt;b&amp;c</value>" in hdfs
    import xml.etree.ElementTree as ET

    parsed = {p.findtext("name"): p.findtext("value")
              for f in ("core-site.xml", "hdfs-site.xml")
              for p in ET.parse(tmp_path / f).getroot()}
    assert parsed == conf
