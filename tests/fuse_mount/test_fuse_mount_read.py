"""Reads through real FUSE mounts (daemon CLI) over both backends (minidfs, Hadoop)."""

from __future__ import annotations

import concurrent.futures as cf
import errno
import os
import random
import stat
import subprocess
import sys
import time

import pytest
from fuse_kit import hdfs_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]

MiB = 1 << 20
SRC = random.Random(11).randbytes(int(5.3 * MiB))  # 1 MiB blocks: 6 blocks


@pytest.fixture(scope="module")
def dataset(dfs):
    """An HDFS directory with a multi-block file and some small ones (written once)."""
    import hdfs_client

    client = hdfs_client.connect(dfs.uri)
    base = hdfs_dir(client, "read")
    client.write_file(f"{base}/big.bin", SRC)
    small = {}
    for i in range(40):
        data = random.Random(i).randbytes(90_000 + i * 997)
        client.write_file(f"{base}/small/{i:03d}.jpg", data)
        small[f"{i:03d}.jpg"] = data
    client.write_file(f"{base}/empty", b"")
    client.close()
    return base, small


@pytest.fixture(params=["no-cache", "small-cache"])
def ro_mount(request, dfs, dataset, mount_factory, tmp_path):
    """Without a disk cache, and with one smaller than big.bin: then replies are
    spliced from the cache file or vmspliced from read-ahead buffers, while
    chunks are evicted under the readers."""
    base, _ = dataset
    extra = []
    if request.param == "small-cache":
        extra = ["--cache-dir", str(tmp_path / "cache"), "--cache-size", "3M"]
    return mount_factory(f"{dfs.uri}{base}", "--read-only", *extra)


def test_sequential_read_is_exact(ro_mount):
    with open(ro_mount.path / "big.bin", "rb") as f:
        assert f.read() == SRC
    assert (ro_mount.path / "empty").read_bytes() == b""
    st = os.stat(ro_mount.path / "big.bin")
    assert st.st_size == len(SRC) and stat.S_ISREG(st.st_mode)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reads=hst.lists(hst.tuples(hst.integers(0, len(SRC) + 100), hst.integers(1, 2 * MiB + 7)),
                       min_size=1, max_size=10),
       drop=hst.booleans())
def test_random_reads_are_exact(ro_mount, reads, drop):
    fd = os.open(ro_mount.path / "big.bin", os.O_RDONLY)
    try:
        if drop:  # make the kernel ask the mount again instead of its page cache
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        for off, n in reads:
            assert os.pread(fd, n, off) == SRC[off:off + n]
    finally:
        os.close(fd)


def test_direct_io_reads_are_exact(ro_mount):
    """O_DIRECT bypasses the page cache: every request reaches the read-ahead logic."""
    fd = os.open(ro_mount.path / "big.bin", os.O_RDONLY | os.O_DIRECT)
    try:
        got = bytearray()
        while True:
            b = os.read(fd, 256 * 1024)
            if not b:
                break
            got += b
        assert got == SRC
    finally:
        os.close(fd)


def test_direct_io_mount_reads_are_exact(dfs, hdfs, mount_factory, tmp_path):
    """--direct-io: a large cold file bypasses the page cache and reads exactly;
    once the disk cache holds it, a new open uses the page cache again (shared
    mmap works, which direct I/O refuses with libfuse < 3.16)."""
    base = hdfs_dir(hdfs, "dio")
    data = random.Random(7).randbytes(17 * MiB + 123)  # above the 16 MiB threshold
    hdfs.write_file(f"{base}/big.bin", data)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--direct-io",
                      "--cache-dir", str(tmp_path / "cache"))
    with open(m.path / "big.bin", "rb") as f:
        assert f.read() == data
    fd = os.open(m.path / "big.bin", os.O_RDONLY)
    try:
        for off, n in ((0, 5), (MiB - 1, 2 * MiB + 3), (len(data) - 10, 100)):
            assert os.pread(fd, n, off) == data[off:off + n]
    finally:
        os.close(fd)
    # In a child, never here: a page fault on a FUSE mapping holds this process's
    # GIL while the minidfs that serves it runs in this process (a CI run hung
    # here for its whole budget once the own loop let the mapping succeed at once).
    probe = ("import errno, mmap, sys, time\n"
             "deadline = time.monotonic() + 30\n"
             "while True:  # chunks are written in the background\n"
             "    with open(sys.argv[1], 'rb') as f:\n"
             "        try:\n"
             "            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:\n"
             "                sys.stdout.buffer.write(mm[-1000:]); sys.exit()\n"
             "        except OSError as e:\n"
             "            if e.errno != errno.ENODEV or time.monotonic() > deadline:\n"
             "                sys.stdout.write(errno.errorcode[e.errno]); sys.exit()\n"
             "    time.sleep(0.2)\n")
    out = subprocess.run([sys.executable, "-c", probe, str(m.path / "big.bin")],
                         capture_output=True, timeout=90).stdout
    assert out == data[-1000:]


def test_own_loop_lets_a_direct_io_file_be_mmapped(dfs, hdfs, mount_factory):
    """Our own loop negotiates FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6): a --direct-io file
    that is not in any cache can be mmap-ed MAP_SHARED at once, which through libfuse
    3.14 fails with ENODEV (pyarrow, numpy memmaps and safetensors do this)."""
    base = hdfs_dir(hdfs, "dio-mmap")
    data = random.Random(8).randbytes(17 * MiB + 5)
    hdfs.write_file(f"{base}/big.bin", data)
    # in a child: a page fault on the mapping holds this process's GIL, and the
    # minidfs serving the fault runs in this process
    probe = ("import errno, mmap, sys\n"
             "f = open(sys.argv[1], 'rb')\n"
             "try:\n"
             "    mm = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)\n"
             "except OSError as e:\n"
             "    sys.stdout.write(errno.errorcode[e.errno]); sys.exit()\n"
             "sys.stdout.buffer.write(mm[:4096] + mm[-999:])\n")
    outcomes = {}
    for loop in ("own", "libfuse"):
        m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--direct-io",
                          "--fuse-loop", loop, name=f"dio-{loop}")
        out = subprocess.run([sys.executable, "-c", probe, str(m.path / "big.bin")],
                             capture_output=True, timeout=60).stdout
        outcomes[loop] = True if out == data[:4096] + data[-999:] else out[:20].decode()
    assert outcomes == {"own": True, "libfuse": "ENODEV"}


def test_direct_io_auto_is_decided_from_the_connection_and_the_dataset(dfs, hdfs,
                                                                        mount_factory):
    """The default (auto) asks the connection first: through libfuse (mmap of a
    direct-I/O file would fail) it stays off without sizing anything; our own loop
    sizes the dataset at the NameNode and compares it with the memory available
    (this one is small: off, so a later epoch comes from the page cache)."""
    base = hdfs_dir(hdfs, "dio-auto")
    hdfs.write_file(f"{base}/big.bin", b"z" * (17 * MiB))
    said = {}
    for loop in ("own", "libfuse"):
        m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--fuse-loop", loop,
                          name=f"dio-auto-{loop}")
        deadline = time.monotonic() + 20
        while "direct I/O: auto" not in m.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        said[loop] = [line.split("direct I/O: ", 1)[1] for line in m.log_text().splitlines()
                      if "direct I/O: " in line]
    assert len(said["own"]) == 1 and said["own"][0].startswith("auto off (dataset 17.0 MiB, ")
    assert said["libfuse"] == ["auto stays off (this FUSE connection cannot mmap direct-I/O "
                               "files)"]


def test_many_concurrent_readers(ro_mount, dataset):
    _, small = dataset

    def read_small(name):
        return (ro_mount.path / "small" / name).read_bytes() == small[name]

    def read_big(seed):
        rnd = random.Random(seed)
        fd = os.open(ro_mount.path / "big.bin", os.O_RDONLY)
        try:
            for _ in range(20):
                off, n = rnd.randrange(len(SRC)), rnd.randrange(1, 300_000)
                if os.pread(fd, n, off) != SRC[off:off + n]:
                    return False
            return True
        finally:
            os.close(fd)

    with cf.ThreadPoolExecutor(16) as ex:
        jobs = [ex.submit(read_small, n) for n in small] * 2
        jobs += [ex.submit(read_big, s) for s in range(8)]
        assert all(j.result(timeout=120) for j in jobs)


def test_readdir_and_stat(ro_mount, dataset):
    _, small = dataset
    assert sorted(os.listdir(ro_mount.path)) == ["big.bin", "empty", "small"]
    assert sorted(os.listdir(ro_mount.path / "small")) == sorted(small)
    for name, data in small.items():
        assert os.stat(ro_mount.path / "small" / name).st_size == len(data)
    with pytest.raises(FileNotFoundError):
        os.stat(ro_mount.path / "nope")
    with pytest.raises(NotADirectoryError):
        os.stat(ro_mount.path / "big.bin" / "x")
    with pytest.raises(IsADirectoryError):
        open(ro_mount.path / "small", "rb")


@pytest.mark.minidfs_only
def test_page_cache_kept_while_unchanged(ro_mount, dfs):
    """Second open of an unchanged file is served by the kernel: no new HDFS reads."""
    data = (ro_mount.path / "big.bin").read_bytes()
    assert data == SRC
    reads0 = dfs.faults.calls.get("READ_BLOCK", 0)
    assert (ro_mount.path / "big.bin").read_bytes() == SRC
    assert dfs.faults.calls.get("READ_BLOCK", 0) == reads0


@pytest.mark.minidfs_only
def test_huge_directory_ls_is_one_listing(dfs, hdfs, mount_factory):
    """`ls -l` of a big directory: paged listings, not one getFileInfo per entry."""
    n = 3000
    base = hdfs_dir(hdfs, "huge")
    with cf.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: hdfs.create(f"{base}/file-{i:06d}").close(), range(n)))
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--metadata-ttl", "60")
    calls = dfs.faults.calls
    info0, list0 = calls.get("getFileInfo", 0), calls.get("getListing", 0)
    out = subprocess.run(["ls", "-l", str(m.path)], capture_output=True, text=True, check=True)
    assert len(out.stdout.splitlines()) == n + 1  # "total" line + entries
    assert calls.get("getListing", 0) - list0 <= 2 * (n // 1000 + 1)
    assert calls.get("getFileInfo", 0) - info0 <= 5


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_huge_directory_100k(dfs_factory, mount_factory):
    import hdfs_client

    dfs = dfs_factory()
    client = hdfs_client.connect(dfs.uri)
    n = 100_000
    client.mkdirs("/big")
    with cf.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: client.create(f"/big/f{i:06d}").close(), range(n)))
    m = mount_factory(f"{dfs.uri}/big", "--read-only", "--metadata-ttl", "300")
    counts = getattr(dfs, "faults", None)  # minidfs counts RPCs; Hadoop's NameNode does not here
    info0 = counts.calls.get("getFileInfo", 0) if counts else 0
    t0 = time.monotonic()
    out = subprocess.run(["ls", "-l", str(m.path)], capture_output=True, text=True, check=True)
    elapsed = time.monotonic() - t0
    assert len(out.stdout.splitlines()) == n + 1
    if counts:
        assert counts.calls.get("getFileInfo", 0) - info0 <= 5
    print(f"ls -l of {n} entries: {elapsed:.1f}s")


def test_read_only_mount_refuses_changes(ro_mount):
    p = ro_mount.path
    for fn in (lambda: open(p / "new", "wb"), lambda: os.mkdir(p / "d"),
               lambda: os.unlink(p / "big.bin"), lambda: os.rename(p / "big.bin", p / "x"),
               lambda: os.chmod(p / "big.bin", 0o600), lambda: os.truncate(p / "big.bin", 0),
               lambda: open(p / "big.bin", "ab")):
        with pytest.raises(OSError) as ei:
            fn()
        assert ei.value.errno == errno.EROFS
    assert (p / "big.bin").read_bytes()[:100] == SRC[:100]


def test_statfs(ro_mount):
    st = os.statvfs(ro_mount.path)
    assert st.f_blocks > 0 and st.f_bavail <= st.f_blocks and st.f_namemax == 255


def test_file_deleted_while_open_fails_uncached_reads_with_enoent(dfs, mount_factory):
    """SEMANTICS.md: a file deleted in HDFS while open keeps serving what the mount
    already holds; reads of anything else return the old bytes for as long as the
    DataNodes still have them (HDFS deletes replicas at the DataNodes' next heartbeats,
    seconds later), then fail with ENOENT - never other bytes."""
    import hdfs_client

    client = hdfs_client.connect(dfs.uri)
    base = hdfs_dir(client, "deleted-while-open")
    n_mib = 24  # 1 MiB blocks: one fresh block per probe
    data = random.Random(5).randbytes(n_mib * MiB)
    client.write_file(f"{base}/f.bin", data)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only")
    fd = os.open(m.path / "f.bin", os.O_RDONLY)
    try:
        tail = (n_mib - 1) * MiB
        assert os.pread(fd, 4096, tail) == data[tail:tail + 4096]  # a random read: no stream
        client.delete(f"{base}/f.bin")
        deleted = time.monotonic()
        # Never-read ranges in no order a read-ahead could follow, one every 0.4 s.
        fresh = random.Random(6).sample(range(n_mib - 1), n_mib - 1)
        first_enoent = None
        while fresh and time.monotonic() - deleted < 25:
            offset = fresh.pop() * MiB + 100_000
            try:
                got = os.pread(fd, 4096, offset)
            except OSError as exc:
                assert exc.errno == errno.ENOENT, exc
                if first_enoent is None:
                    first_enoent = time.monotonic() - deleted
                elif time.monotonic() - deleted > first_enoent + 3:
                    break  # replicas gone for good: the last probe failed too
            else:
                assert got == data[offset:offset + 4096], f"other bytes at {offset}"
            time.sleep(0.4)
        assert first_enoent is not None, "uncached reads still served 25 s after the delete"
        assert os.pread(fd, 4096, tail) == data[tail:tail + 4096]  # already held: still served
    finally:
        os.close(fd)
        client.close()
