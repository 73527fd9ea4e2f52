"""Hadoop's own Java client (3.5.0 DistributedFileSystem) against minidfs and real HDFS.

Why: minidfs must be indistinguishable from HDFS to real clients, and the Java
client is far stricter than hdfs-native (response-length checks, chunk offsets,
pipeline acks, lease/recovery RPCs).  Each check of tests/java/HdfsJavaSmoke.java
becomes one test here, run once with one DataNode and once with two, on minidfs and
(marked ``hadoop``) on Apache Hadoop's own MiniDFSCluster, so every expectation is
checked against the real thing; the cross-client tests move bytes between the Java
client and hdfs-native.

Needs a JDK and the client jars (``scripts/fetch-hadoop.sh``, Maven); skips otherwise.
Run: ``python -m pytest -m "java and not hadoop" tests/minidfs_java`` (minidfs),
``-m "java and hadoop"`` (real HDFS), ``-m java`` (both).
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import java_kit

BS = java_kit.BLOCK_SIZE
_SKIP = java_kit.skip_reason()

pytestmark = [pytest.mark.java, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def java_classes() -> Path:
    if _SKIP:
        pytest.skip(_SKIP)
    return java_kit.compile_smoke()


#: every check runs on minidfs and on Apache Hadoop's own HDFS (``-m "java and hadoop"``):
#: an expectation that fails on Hadoop is a minidfs invention, not HDFS behaviour
CLUSTERS = [
    pytest.param(("minidfs", 1), id="dn1"),
    pytest.param(("minidfs", 2), id="dn2"),
    pytest.param(("hadoop", 1), id="hadoop-dn1", marks=pytest.mark.hadoop),
    pytest.param(("hadoop", 2), id="hadoop-dn2", marks=pytest.mark.hadoop),
]


@pytest.fixture(scope="module", params=CLUSTERS)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            java_classes: Path, _hadoop_env_cleared: None) -> Iterator[tuple[Any, int]]:
    from hdfs_backends import backend_unavailable, start_backend

    backend, n = request.param
    reason = backend_unavailable(backend)
    if reason:
        pytest.skip(reason)
    data_dir = tmp_path_factory.mktemp(f"{backend}-java-dn{n}")
    dfs = start_backend(backend, data_dir, datanodes=n, block_size=BS)
    try:
        yield dfs, n
    finally:
        dfs.stop()


@pytest.fixture(scope="module")
def smoke(cluster: tuple[Any, int], java_classes: Path) -> java_kit.SmokeRun:
    dfs, n = cluster
    return java_kit.run_smoke(java_classes, dfs.uri, datanodes=n)


def test_smoke_program_ran_to_completion(smoke: java_kit.SmokeRun) -> None:
    """The JVM must exit normally (0 all passed, 1 some failed) with a result per check."""
    assert smoke.returncode in (0, 1), (
        f"java exited {smoke.returncode}\nstdout:\n{smoke.stdout[-3000:]}\n"
        f"stderr:\n{smoke.stderr[-6000:]}")
    assert "SUMMARY " in smoke.stdout
    missing = [n for n in java_kit.check_names() if n not in smoke.results]
    assert not missing, f"checks without a result: {missing}"


@pytest.mark.parametrize("check", java_kit.check_names())
def test_java_check(smoke: java_kit.SmokeRun, check: str) -> None:
    if check not in smoke.results:
        pytest.fail(f"no result for {check} (JVM exit {smoke.returncode})\n"
                    f"stderr tail:\n{smoke.stderr[-4000:]}")
    status, message = smoke.results[check]
    if status != "PASS":
        pytest.fail(f"{check}: {message}\n{smoke.failure_detail(check)}", pytrace=False)


# ------------------------------------------------------------------ cross-client


def _native(dfs: Any) -> Any:
    import hdfs_client

    return hdfs_client.connect(dfs.uri)


def _payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _java(java_classes: Path, *args: str) -> None:
    proc = java_kit.run_java(java_classes, [*args, "--block-size", str(BS)], timeout=300)
    assert proc.returncode == 0, f"java {args[0]} failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"


def _remote(tag: str) -> str:
    return f"/xclient/{tag}-{uuid.uuid4().hex[:8]}.bin"


def test_java_writes_native_reads(cluster: tuple[Any, int], java_classes: Path,
                                  tmp_path: Path) -> None:
    dfs, _ = cluster
    data = _payload(1, 2 * BS + 12_345)  # three blocks, unaligned tail
    local = tmp_path / "java-in.bin"
    local.write_bytes(data)
    remote = _remote("java")
    _java(java_classes, "put", dfs.uri, str(local), remote)
    client = _native(dfs)
    assert client.get_status(remote).length == len(data)
    assert client.read_file(remote) == data
    with client.open_reader(remote) as r:  # ranged reads across block boundaries
        assert r.read_range(BS - 7, 20) == data[BS - 7:BS + 13]
        assert r.read_range(2 * BS, 12_345) == data[2 * BS:]


def test_native_writes_java_reads(cluster: tuple[Any, int], java_classes: Path,
                                  tmp_path: Path) -> None:
    dfs, _ = cluster
    data = _payload(2, 2 * BS + 4_321)
    remote = _remote("native")
    client = _native(dfs)
    with client.create(remote, overwrite=True, create_parent=True, block_size=BS) as w:
        w.write(data[:700_001])
        w.hsync()
        w.write(data[700_001:])
    out = tmp_path / "java-out.bin"
    _java(java_classes, "get", dfs.uri, remote, str(out))
    assert out.read_bytes() == data


def test_java_appends_to_native_file(cluster: tuple[Any, int], java_classes: Path,
                                     tmp_path: Path) -> None:
    dfs, _ = cluster
    head = _payload(3, 1_500)
    tail = _payload(4, BS + 777)  # crosses into a second block
    remote = _remote("native-then-java")
    client = _native(dfs)
    client.write_file(remote, head)
    local = tmp_path / "tail.bin"
    local.write_bytes(tail)
    _java(java_classes, "append", dfs.uri, str(local), remote)
    assert client.read_file(remote) == head + tail


def test_native_appends_to_java_file(cluster: tuple[Any, int], java_classes: Path,
                                     tmp_path: Path) -> None:
    dfs, _ = cluster
    head = _payload(5, BS + 999)
    tail = _payload(6, 3_333)
    local = tmp_path / "head.bin"
    local.write_bytes(head)
    remote = _remote("java-then-native")
    _java(java_classes, "put", dfs.uri, str(local), remote)
    client = _native(dfs)
    with client.append(remote) as w:
        w.write(tail)
    out = tmp_path / "both.bin"
    _java(java_classes, "get", dfs.uri, remote, str(out))
    assert out.read_bytes() == head + tail
    assert client.read_file(remote) == head + tail


def test_native_reads_java_file_open_after_hflush(cluster: tuple[Any, int], java_classes: Path,
                                                 tmp_path: Path) -> None:
    """An hdfs-native reader (the FUSE mount) of a file a Java writer has hflushed but not
    closed sees its completed blocks, as on HDFS: getBlockLocations leaves the block under
    construction out of fileLength (a Java reader asks the DataNode for its visible length:
    the read_while_open_after_hflush check).  getFileInfo counts the hflushed bytes: the
    first hflush into a new block sends fsync with the block's length.  After close every
    reader sees everything."""
    dfs, _ = cluster
    data = _payload(7, 2 * BS + 300_000)  # hflushed at the half: one block completed
    local = tmp_path / "held.bin"
    local.write_bytes(data)
    remote = _remote("held")
    proc = java_kit.popen_java(java_classes, ["hold", dfs.uri, str(local), remote,
                                              "--block-size", str(BS)])
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        assert line.startswith("FLUSHED "), f"{line!r} {proc.stderr.read() if proc.stderr else ''}"
        half = int(line.split()[1])
        assert BS < half < 2 * BS
        client = _native(dfs)
        assert client.get_status(remote).length == half
        with client.open_reader(remote) as r:
            assert r.size == BS
            assert r.read_range(0, BS) == data[:BS]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-4000:]
        assert "CLOSED" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert client.read_file(remote) == data


def test_skip_reason_names_the_fix() -> None:
    """When the tier cannot run, the reason must tell the user what to do."""
    saved = os.environ.get("HADOOP_JARS_DIR")
    os.environ["HADOOP_JARS_DIR"] = "/nonexistent/hadoop-jars"
    try:
        reason = java_kit.skip_reason()
    finally:
        if saved is None:
            os.environ.pop("HADOOP_JARS_DIR", None)
        else:
            os.environ["HADOOP_JARS_DIR"] = saved
    assert reason is not None
    assert "fetch-hadoop.sh" in reason or "JDK" in reason
