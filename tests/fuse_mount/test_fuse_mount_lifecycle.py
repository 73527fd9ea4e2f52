"""Faults, cache behaviour, metrics and the daemon's life cycle, on real mounts."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time

import pytest
from fuse_kit import hdfs_dir, pid_alive, run_cli, small_tmpfs

from fuse_mount import mounts

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]

MiB = 1 << 20


def blob(n, seed):
    import random

    return random.Random(seed).randbytes(n)


def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


# -- DataNode faults ----------------------------------------------------------------------
@pytest.fixture
def own_cluster(dfs_factory):
    import hdfs_client

    dfs = dfs_factory(datanodes=1)
    client = hdfs_client.connect(dfs.uri)
    client.mkdirs("/d")
    yield dfs, client
    client.close()


def test_stopped_datanode_is_eio_then_recovers(own_cluster, mount_factory):
    dfs, client = own_cluster
    data = blob(2 * MiB, 1)
    client.write_file("/d/f", data)
    m = mount_factory(f"{dfs.uri}/d", "--read-only", "--io-timeout", "3")
    assert os.stat(m.path / "f").st_size == len(data)
    dfs.stop_datanode(0)
    t0 = time.monotonic()
    with pytest.raises(OSError) as ei:
        (m.path / "f").read_bytes()
    assert ei.value.errno == errno.EIO
    assert time.monotonic() - t0 < 3 * 2 + 5  # open + read, each bounded by --io-timeout
    dfs.start_datanode(0)
    assert wait_until(lambda: _reads_ok(m.path / "f", data), timeout=30)


def _reads_ok(path, data):
    try:
        return path.read_bytes() == data
    except OSError:
        return False


@pytest.mark.minidfs_only
def test_stalled_datanode_is_eio_in_bounded_time(own_cluster, mount_factory):
    dfs, client = own_cluster
    data = blob(3 * MiB, 2)
    client.write_file("/d/s", data)
    m = mount_factory(f"{dfs.uri}/d", "--read-only", "--io-timeout", "1.5")
    fd = os.open(m.path / "s", os.O_RDONLY)
    try:
        dfs.faults.stall_reads(0)
        t0 = time.monotonic()
        with pytest.raises(OSError) as ei:
            os.pread(fd, 4096, MiB)
        elapsed = time.monotonic() - t0
        assert ei.value.errno == errno.EIO
        assert elapsed < 1.5 + 3, elapsed
        # other requests are not blocked by the hung one
        t0 = time.monotonic()
        assert sorted(os.listdir(m.path)) == ["s"]
        assert time.monotonic() - t0 < 1.0
        dfs.faults.unstall()
        assert wait_until(lambda: os.pread(fd, 4096, MiB) == data[MiB:MiB + 4096], 20)
        assert os.pread(fd, len(data), 0) == data
    finally:
        dfs.faults.unstall()
        os.close(fd)


# -- disk cache -------------------------------------------------------------------------------
def cache_bytes(d):
    # allocated bytes of the cached data (--cache-size bounds those; the checksum
    # logs beside them take ~120 bytes per MiB): cache files are sparse
    return sum(f.stat().st_blocks * 512 for f in (d / "data").rglob("*") if f.is_file())


def test_cache_eviction_under_small_cache(dfs, hdfs, mount_factory, tmp_path):
    base = hdfs_dir(hdfs, "evict")
    files = {f"f{i}": blob(int(1.5 * MiB), 10 + i) for i in range(4)}
    for name, data in files.items():
        hdfs.write_file(f"{base}/{name}", data)
    cache = tmp_path / "cache"
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--cache-dir", str(cache),
                      "--cache-size", "3M", metrics=True)
    for name, data in files.items():
        assert (m.path / name).read_bytes() == data
    assert 0 < cache_bytes(cache) <= 3 * MiB
    metrics = m.metrics()
    assert metrics["hdfs_fuse_cache_evictions_total"] >= 1
    assert metrics["hdfs_fuse_cache_bytes"] <= 3 * MiB
    for name, data in files.items():  # evicted or not, the bytes are right
        fd = os.open(m.path / name, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        assert os.pread(fd, len(data), 0) == data
        os.close(fd)


def test_warm_cache_survives_remount_and_serves_without_datanode(own_cluster, mount_factory,
                                                                 tmp_path):
    dfs, client = own_cluster
    data = blob(3 * MiB + 123, 3)
    client.write_file("/d/w", data)
    cache = tmp_path / "cache"
    args = ("--read-only", "--cache-dir", str(cache), "--cache-size", "64M")
    m1 = mount_factory(f"{dfs.uri}/d", *args, name="first")
    assert (m1.path / "w").read_bytes() == data
    mounts.unmount(str(m1.path))
    assert wait_until(lambda: not pid_alive(m1.pid))
    dfs.stop_datanode(0)  # only the NameNode is left: data must come from the cache
    m2 = mount_factory(f"{dfs.uri}/d", *args, "--io-timeout", "3", metrics=True, name="second")
    assert (m2.path / "w").read_bytes() == data
    metrics = m2.metrics()
    assert metrics["hdfs_fuse_hdfs_read_bytes_total"] == 0
    assert metrics["hdfs_fuse_cache_read_bytes_total"] >= len(data)


def resident_bytes(path) -> int:
    """Bytes of ``path`` in the page cache now (mincore(2) over a mapping)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = os.path.getsize(path)
    page = mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
        vec = ctypes.create_string_buffer(-(-size // page))
        try:
            assert libc.mincore(addr, size, vec) == 0, ctypes.get_errno()
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in vec.raw) * page


@pytest.mark.parametrize("loop,splice", [("libfuse", True), ("libfuse", False), ("own", None)])
def test_warm_reads_are_spliced_and_not_kept_twice_in_ram(dfs, hdfs, mount_factory,
                                                          tmp_path, loop, splice):
    """A remount reads a cached file from the cache file, exact, and the cache file's
    pages are dropped behind the reader because the kernel keeps the FUSE file's.
    Through libfuse the bytes are spliced (no copy into libfuse's buffer) unless
    --no-splice; our own loop writes the checked buffer to /dev/fuse itself (one
    kernel copy either way) and never splices."""
    base = hdfs_dir(hdfs, "splice")
    data = blob(64 * MiB + 4321, 6)
    hdfs.write_file(f"{base}/big", data)
    cache = tmp_path / "cache"
    args = ("--read-only", "--cache-dir", str(cache), "--cache-size", "256M",
            "--fuse-loop", loop, *(("--no-splice",) if splice is False else ()))
    m1 = mount_factory(f"{dfs.uri}{base}", *args, name="fill")
    assert (m1.path / "big").read_bytes() == data
    mounts.unmount(str(m1.path))
    assert wait_until(lambda: not pid_alive(m1.pid))
    (cache_file,) = [p for p in (cache / "data").rglob("*") if p.is_file()]
    os.posix_fadvise(fd := os.open(cache_file, os.O_RDONLY), 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)

    m2 = mount_factory(f"{dfs.uri}{base}", *args, metrics=True, name="warm")
    got = bytearray()
    with open(m2.path / "big", "rb", buffering=0) as fh:
        while chunk := fh.read(MiB):
            got += chunk
    assert got == data
    metrics = m2.metrics()
    assert metrics["hdfs_fuse_hdfs_read_bytes_total"] == 0
    spliced = metrics["hdfs_fuse_cache_spliced_bytes_total"]
    assert spliced >= len(data) if splice else spliced == 0
    assert metrics["hdfs_fuse_cache_read_bytes_total"] >= len(data)
    # at most the margin behind the reader, the last batch and kernel read-ahead remain
    assert resident_bytes(cache_file) <= 40 * MiB, resident_bytes(cache_file)


def test_full_cache_disk_reads_through(dfs, hdfs, mount_factory, tmp_path):
    with small_tmpfs(tmp_path / "tiny", "1m") as tiny:
        base = hdfs_dir(hdfs, "full")
        data = blob(5 * MiB, 4)
        hdfs.write_file(f"{base}/big", data)
        m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--cache-dir", str(tiny),
                          "--cache-size", "1G", metrics=True)
        assert (m.path / "big").read_bytes() == data
        assert m.metrics()["hdfs_fuse_cache_write_errors_total"] >= 1
        mounts.unmount(str(m.path))


def test_metrics_endpoint(dfs, hdfs, mount_factory):
    base = hdfs_dir(hdfs, "metrics")
    data = blob(2 * MiB, 5)
    hdfs.write_file(f"{base}/m", data)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", metrics=True)
    assert (m.path / "m").read_bytes() == data
    with pytest.raises(FileNotFoundError):
        os.stat(m.path / "nope")
    metrics = m.metrics()
    assert metrics["hdfs_fuse_hdfs_read_bytes_total"] >= len(data)
    assert metrics['hdfs_fuse_request_seconds_count{op="read"}'] >= 1
    # a name that is not there: a failed getattr through libfuse, a lookup through our loop
    assert (metrics.get('hdfs_fuse_errors_total{errno="ENOENT",op="getattr"}', 0)
            + metrics.get('hdfs_fuse_errors_total{errno="ENOENT",op="lookup"}', 0)) >= 1
    assert "hdfs_fuse_readahead_wasted_bytes_total" in metrics


# -- daemon life cycle ----------------------------------------------------------------------
def test_sigterm_unmounts_cleanly(dfs, hdfs, mount_factory):
    base = hdfs_dir(hdfs, "term")
    m = mount_factory(f"{dfs.uri}{base}")
    assert mounts.mount_state(str(m.path)) is mounts.MountState.HEALTHY
    os.kill(m.pid, signal.SIGTERM)
    assert wait_until(lambda: not pid_alive(m.pid))
    assert mounts.find_mount(str(m.path)) is None


def test_fusermount_u_ends_the_process(dfs, hdfs, mount_factory):
    base = hdfs_dir(hdfs, "fu")
    m = mount_factory(f"{dfs.uri}{base}")
    subprocess.run(["fusermount3", "-u", str(m.path)], check=True)
    assert wait_until(lambda: not pid_alive(m.pid))


def test_daemon_reports_errors(dfs, hdfs, tmp_path):
    base = hdfs_dir(hdfs, "err")
    hdfs.write_file(f"{base}/file", b"x")
    r = run_cli("http://nope/x", str(tmp_path / "m1"))
    assert r.returncode == 2 and "hdfs://" in r.stderr
    r = run_cli(f"{dfs.uri}{base}/file", str(tmp_path / "m2"))
    assert r.returncode == 1 and "not a directory" in r.stderr.lower()
    r = run_cli(f"{dfs.uri}{base}/missing", str(tmp_path / "m3"))
    assert r.returncode == 1 and "NotFound" in r.stderr
    with socket.socket() as s:        # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    t0 = time.monotonic()
    r = run_cli(f"hdfs://127.0.0.1:{dead}/x", str(tmp_path / "m4"), "--io-timeout", "3")
    assert r.returncode == 1 and r.stderr.strip()
    assert time.monotonic() - t0 < 60
    for d in ("m2", "m3", "m4"):
        assert mounts.find_mount(str(tmp_path / d)) is None


def test_unreachable_namenode_and_a_file_as_mountpoint_are_said_in_words(tmp_path):
    """With the default --io-timeout (30 s) a mistyped host and a refused port used to
    wait 31 s and report a timed-out stat; a regular file as mountpoint said only
    "[Errno 17] File exists"."""
    with socket.socket() as s:        # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    for uri, words in ((f"hdfs://no-such-host.invalid:{dead}/x", "does not resolve"),
                       (f"hdfs://127.0.0.1:{dead}/x", "refused the connection")):
        t0 = time.monotonic()
        r = run_cli(uri, str(tmp_path / "m"))
        assert r.returncode == 1 and words in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert time.monotonic() - t0 < 15
    (tmp_path / "file").write_text("x")
    r = run_cli(f"hdfs://127.0.0.1:{dead}/x", str(tmp_path / "file"))
    assert r.returncode == 1 and "exists and is not a directory" in r.stderr, r.stderr
    assert (tmp_path / "file").read_text() == "x"


def test_second_mount_on_same_point_is_refused(dfs, hdfs, mount_factory):
    base = hdfs_dir(hdfs, "twice")
    m = mount_factory(f"{dfs.uri}{base}")
    r = run_cli(f"{dfs.uri}{base}", str(m.path))
    assert r.returncode == 1 and "already mounted" in r.stderr


def test_dead_mount_is_replaced(dfs, hdfs, mount_factory):
    """A killed daemon leaves ENOTCONN behind; mounting again clears it."""
    base = hdfs_dir(hdfs, "dead")
    hdfs.write_file(f"{base}/x", b"alive")
    m = mount_factory(f"{dfs.uri}{base}", name="dead")
    os.kill(m.pid, signal.SIGKILL)
    assert wait_until(lambda: mounts.mount_state(str(m.path)) is mounts.MountState.DEAD)
    m2 = mount_factory(f"{dfs.uri}{base}", name="dead")
    assert (m2.path / "x").read_bytes() == b"alive"


def test_unmount_under_takes_nested_mounts_and_spares_a_name_sibling(tmp_path):
    """Clean-up unmounts everything below a directory, deepest first, and leaves
    ``<dir>-other`` (same prefix, not below) alone."""
    work = tmp_path / "work"
    sibling = tmp_path / "work-other"
    work.mkdir()
    with small_tmpfs(work / "a", "1M") as outer:
        (outer / "b").mkdir()
        with small_tmpfs(outer / "b", "1M") as inner, small_tmpfs(sibling, "1M"):
            found, still = mounts.unmount_under(str(work))
            assert sorted(found) == sorted([str(outer), str(inner)])
            assert still == []
            assert not mounts.is_mounted(str(outer)) and not mounts.is_mounted(str(inner))
            assert mounts.is_mounted(str(sibling))
    assert mounts.unmount_under(str(work)) == ([], [])
