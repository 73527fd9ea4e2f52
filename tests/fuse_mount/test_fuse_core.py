"""The filesystem core against both backends (minidfs and Hadoop), without a kernel.

These call :class:`fuse_mount.fs.HdfsFilesystem` directly: the same code the
FUSE adapter calls, so the logic is checked where failures are easy to read.
Faults minidfs cannot produce on demand at this layer (one failed read, a
client call that hangs) come from ``hdfs_client.wrappers.FaultInjectingClient``.
"""

from __future__ import annotations

import errno
import os
import random
import stat
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from fuse_mount.errors import errno_for
from fuse_mount.fs import HdfsFilesystem
from fuse_mount.options import MountOptions
from hdfs_client.wrappers import FaultInjectingClient

pytestmark = pytest.mark.timeout(120)

MiB = 1 << 20


@pytest.fixture
def base(hdfs):
    path = f"/core-{uuid.uuid4().hex[:8]}"
    hdfs.mkdirs(path)
    return path


def make_fs(client, base, **opts):
    opts.setdefault("io_timeout", 10)
    return HdfsFilesystem(client, base, MountOptions(**opts))


@pytest.fixture
def fs(hdfs, base):
    f = make_fs(hdfs, base)
    yield f
    f.close()


def read_all(fs, path, chunk=MiB):
    fh = fs.open(path, os.O_RDONLY)
    try:
        out = bytearray()
        while True:
            b = fs.read(fh, chunk, len(out))
            if not b:
                return bytes(out)
            out += b
    finally:
        fs.release(fh)


def errno_of(fn, *args):
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001
        return errno_for(exc)
    return 0


# -- metadata -------------------------------------------------------------------------------
@pytest.mark.minidfs_only
def test_getattr_and_negative_cache(fs, hdfs, base, dfs):
    hdfs.write_file(f"{base}/f", b"x" * 1234)
    a = fs.getattr("/f")
    assert stat.S_ISREG(a.mode) and a.size == 1234 and a.nlink == 1
    assert stat.S_ISDIR(fs.getattr("/").mode)
    before = dfs.faults.calls.get("getFileInfo", 0)
    for _ in range(5):
        assert errno_of(fs.getattr, "/missing") == errno.ENOENT
    # at most one RPC, then the negative entry (or the directory's listing) answers
    assert dfs.faults.calls.get("getFileInfo", 0) - before <= 1


@pytest.mark.minidfs_only
def test_lookup_miss_warms_the_directory(fs, hdfs, base, dfs):
    for i in range(50):
        hdfs.create(f"{base}/s{i:02d}").close()
    fs.getattr("/s00")                       # miss: getFileInfo + listing in the background
    deadline = time.monotonic() + 5
    while fs.meta.get_listing("/") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    before = dfs.faults.calls.get("getFileInfo", 0)
    for i in range(50):
        assert fs.getattr(f"/s{i:02d}").size == 0
    assert errno_of(fs.getattr, "/not-there") == errno.ENOENT  # answered by the listing
    assert dfs.faults.calls.get("getFileInfo", 0) == before


@pytest.mark.minidfs_only
def test_listing_fills_attribute_cache(fs, hdfs, base, dfs):
    names = [f"f{i:04d}" for i in range(1500)]  # more than one listing page (1000)
    for n in names[:3]:
        hdfs.write_file(f"{base}/{n}", b"abc")
    for n in names[3:]:
        hdfs.create(f"{base}/{n}").close()
    calls = dfs.faults.calls
    info0, list0 = calls.get("getFileInfo", 0), calls.get("getListing", 0)
    entries = fs.readdir("/")
    assert sorted(n for n, _ in entries if n not in (".", "..")) == names
    for n in names:
        fs.getattr(f"/{n}")
    assert fs.getattr("/f0001").size == 3
    assert calls.get("getListing", 0) - list0 == 2           # two pages
    assert calls.get("getFileInfo", 0) - info0 <= 1          # the directory itself, at most


def test_metadata_ttl_expiry_sees_changes(hdfs, base):
    # 2 s: on Hadoop's NameNode an overwrite alone can take longer than a short TTL
    # (completeFile is retried while the DataNode reports the block)
    ttl = 2.0
    fs = make_fs(hdfs, base, metadata_ttl=ttl)
    try:
        hdfs.write_file(f"{base}/g", b"one")
        assert fs.getattr("/g").size == 3
        cached_at = time.monotonic()
        hdfs.write_file(f"{base}/g", b"three", overwrite=True)
        # Within the TTL the old size may still be served, or already the new one: the
        # first getattr started a listing of the parent in the background (_warm_parent),
        # which may have run after the overwrite, or during it, when HDFS itself lists the
        # file re-created and not yet written (size 0).  Never anything else.
        assert fs.getattr("/g").size in (3, 0, 5)
        time.sleep(max(0.0, cached_at + ttl + 0.2 - time.monotonic()))
        assert fs.getattr("/g").size == 5
        assert read_all(fs, "/g") == b"three"
    finally:
        fs.close()


# -- reads ------------------------------------------------------------------------------------
SRC = random.Random(3).randbytes(int(3.5 * MiB))  # 1 MiB blocks in the fixture: 4 blocks


@pytest.fixture
def multiblock(hdfs, base):
    hdfs.write_file(f"{base}/mb.bin", SRC)
    return "/mb.bin"


def test_sequential_read_multiblock(fs, multiblock):
    assert read_all(fs, multiblock, chunk=128 * 1024) == SRC


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reads=hst.lists(hst.tuples(hst.integers(0, len(SRC) + 10), hst.integers(1, 3 * MiB)),
                       min_size=1, max_size=8))
def test_random_reads_are_exact(fs, multiblock, reads):
    fh = fs.open(multiblock, os.O_RDONLY)
    try:
        for off, n in reads:
            assert bytes(fs.read(fh, n, off)) == SRC[off:off + n]
    finally:
        fs.release(fh)


def test_disk_cache_serves_second_read(hdfs, base, tmp_path, multiblock):
    fs = make_fs(hdfs, base, cache_dir=str(tmp_path / "cache"))
    try:
        assert read_all(fs, multiblock) == SRC
        assert fs.cache.flush()
        from_hdfs = fs.metrics.value("hdfs_fuse_hdfs_read_bytes_total")
        assert from_hdfs == len(SRC)  # each byte fetched once (parts are chunk-aligned)
        assert read_all(fs, multiblock, chunk=300_000) == SRC
        assert fs.metrics.value("hdfs_fuse_hdfs_read_bytes_total") == from_hdfs
        assert fs.metrics.value("hdfs_fuse_cache_read_bytes_total") >= len(SRC)
        # random reads from the cache are exact too
        fh = fs.open(multiblock, os.O_RDONLY)
        for off in (0, 5, MiB - 1, 3 * MiB + 17):
            assert bytes(fs.read(fh, 4096, off)) == SRC[off:off + 4096]
        fs.release(fh)
    finally:
        fs.close()


def read_all_into(fs, path, chunk):
    """Reads as the FUSE adapter does them: into a caller-owned buffer."""
    fh = fs.open(path, os.O_RDONLY)
    try:
        out = bytearray()
        buf = bytearray(chunk)
        while True:
            n = fs.read_into(fh, memoryview(buf), len(out))
            if not n:
                return bytes(out)
            out += buf[:n]
    finally:
        fs.release(fh)


def test_read_into_from_hdfs_and_from_cache_is_exact(hdfs, base, tmp_path, multiblock):
    fs = make_fs(hdfs, base, cache_dir=str(tmp_path / "cache"))
    try:
        assert read_all_into(fs, multiblock, 300_001) == SRC  # read-ahead, then HDFS
        assert fs.cache.flush()
        from_hdfs = fs.metrics.value("hdfs_fuse_hdfs_read_bytes_total")
        # chunk-crossing requests and the short last chunk, straight from the cache files
        assert read_all_into(fs, multiblock, 700_000) == SRC
        assert fs.metrics.value("hdfs_fuse_hdfs_read_bytes_total") == from_hdfs
        fh = fs.open(multiblock, os.O_RDONLY)
        buf = memoryview(bytearray(MiB))
        for off in (0, MiB - 3, 3 * MiB + 17, len(SRC) - 5, len(SRC)):
            n = fs.read_into(fh, buf, off)
            assert bytes(buf[:n]) == SRC[off:off + MiB]
        fs.release(fh)
    finally:
        fs.close()


def test_direct_io_only_for_large_files_not_in_the_cache(hdfs, base, tmp_path, multiblock,
                                                          monkeypatch):
    from fuse_mount import direct_io

    monkeypatch.setattr(direct_io, "MIN_SIZE", 2 * MiB)
    hdfs.write_file(f"{base}/small.bin", b"x" * MiB)
    off = make_fs(hdfs, base, cache_dir=str(tmp_path / "c1"))
    on = make_fs(hdfs, base, cache_dir=str(tmp_path / "c2"), direct_io=True)
    try:
        fh = off.open(multiblock, os.O_RDONLY)
        assert not off.wants_direct_io(fh)  # auto, before it knows: the page cache (mmap works)
        off.release(fh)
        fh = on.open("/small.bin", os.O_RDONLY)
        assert not on.wants_direct_io(fh)
        on.release(fh)
        fh = on.open(multiblock, os.O_RDONLY)
        assert on.wants_direct_io(fh)
        on.release(fh)
        assert read_all(on, multiblock) == SRC
        assert on.cache.flush()
        fh = on.open(multiblock, os.O_RDONLY)
        assert not on.wants_direct_io(fh)  # complete in the disk cache: page cache again
        on.release(fh)
        forced_off = make_fs(hdfs, base, direct_io=False)
        try:
            forced_off.direct_io.connection_ready(mmap_allowed=True)   # no sizing when said
            fh = forced_off.open(multiblock, os.O_RDONLY)
            assert not forced_off.wants_direct_io(fh)
            forced_off.release(fh)
        finally:
            forced_off.close()
    finally:
        off.close()
        on.close()


def test_direct_io_auto_turns_on_only_for_a_dataset_larger_than_half_the_memory(
        hdfs, base, multiblock, monkeypatch):
    """Auto (the default): the dataset's size comes from the NameNode once the
    connection is up; direct I/O only if mmap still works and the dataset could not
    stay in the page cache (a later epoch from RAM would beat it otherwise)."""
    from fuse_mount import direct_io

    monkeypatch.setattr(direct_io, "MIN_SIZE", 2 * MiB)
    size = hdfs.content_summary(base).length
    assert size >= len(SRC)

    def opened_direct(memory: int, mmap_allowed: bool) -> bool:
        fs = make_fs(hdfs, base)
        try:
            fs.direct_io = direct_io.DirectIoPolicy(
                None, lambda: fs.client.content_summary(fs.root).length,
                memory=lambda: memory)
            fs.direct_io.connection_ready(mmap_allowed)
            assert fs.direct_io.wait_sized(10)
            fh = fs.open(multiblock, os.O_RDONLY)
            try:
                return fs.wants_direct_io(fh)
            finally:
                fs.release(fh)
        finally:
            fs.close()

    assert opened_direct(memory=size, mmap_allowed=True)            # 2x the dataset > memory
    assert not opened_direct(memory=4 * size, mmap_allowed=True)    # fits: page cache
    assert not opened_direct(memory=size, mmap_allowed=False)       # libfuse: mmap would fail


def test_direct_io_policy_rules():
    from fuse_mount import direct_io

    assert direct_io.auto_decision(11, 20, True)
    assert not direct_io.auto_decision(10, 20, True)
    assert not direct_io.auto_decision(None, 20, True)
    assert not direct_io.auto_decision(11, None, True)
    assert not direct_io.auto_decision(11, 20, False)

    def refused() -> int:
        raise PermissionError("no access to the dataset root")

    p = direct_io.DirectIoPolicy(None, refused, memory=lambda: 1)
    p.connection_ready(True)
    assert p.wait_sized(5) and p.setting is None and not p.enabled
    calls = []
    p = direct_io.DirectIoPolicy(True, lambda: calls.append(1) or 0)
    p.connection_ready(True)
    assert p.enabled and not calls   # said: never sized
    assert direct_io.available_memory() > 0
    assert direct_io.available_memory("/nonexistent") is None


def test_changed_file_not_served_stale_from_cache(hdfs, base, tmp_path):
    fs = make_fs(hdfs, base, cache_dir=str(tmp_path / "cache"), metadata_ttl=0.3)
    try:
        hdfs.write_file(f"{base}/c", b"A" * 1000)
        assert read_all(fs, "/c") == b"A" * 1000
        assert fs.cache.flush()
        hdfs.write_file(f"{base}/c", b"B" * 1000, overwrite=True)  # same length
        time.sleep(0.4)
        assert read_all(fs, "/c") == b"B" * 1000
    finally:
        fs.close()


# -- faults at the client seam ------------------------------------------------------------
def test_one_failed_read_is_retried(hdfs, base, multiblock):
    client = FaultInjectingClient(hdfs)
    fs = make_fs(client, base)
    try:
        client.fail_next("read", 1)
        assert read_all(fs, multiblock) == SRC
    finally:
        fs.close()


def test_persistent_read_failure_is_eio(hdfs, base, multiblock):
    client = FaultInjectingClient(hdfs)
    fs = make_fs(client, base)
    try:
        fh = fs.open(multiblock, os.O_RDONLY)   # (open already fetched the first part)
        client.fail_next("read", 100)
        assert errno_of(fs.read, fh, 4096, 2 * MiB) == errno.EIO
        client.clear()
        assert bytes(fs.read(fh, 4096, 2 * MiB)) == SRC[2 * MiB:2 * MiB + 4096]  # works again
        fs.release(fh)
    finally:
        fs.close()


def test_hung_read_becomes_eio_in_bounded_time(hdfs, base, multiblock):
    client = FaultInjectingClient(hdfs)
    fs = make_fs(client, base, io_timeout=0.5)
    try:
        fh = fs.open(multiblock, os.O_RDONLY)
        client.delay("read", 3.0)
        t0 = time.monotonic()
        assert errno_of(fs.read, fh, 4096, MiB) == errno.EIO
        assert time.monotonic() - t0 < 1.5
        client.clear()
        assert bytes(fs.read(fh, 4096, 2 * MiB)) == SRC[2 * MiB:2 * MiB + 4096]
        fs.release(fh)
        assert fs.metrics.value("hdfs_fuse_hdfs_timeouts_total") >= 1
    finally:
        fs.close()


def test_hung_namenode_call_becomes_eio(hdfs, base):
    client = FaultInjectingClient(hdfs)
    fs = make_fs(client, base, io_timeout=0.3)
    try:
        client.delay("get_status", 2.0)
        client.delay("list_dir", 2.0)
        t0 = time.monotonic()
        assert errno_of(fs.getattr, "/whatever") == errno.EIO
        assert errno_of(fs.readdir, "/") == errno.EIO
        assert time.monotonic() - t0 < 2.0
    finally:
        client.clear()
        fs.close()


# -- writes ---------------------------------------------------------------------------------
def write_file(fs, path, chunks, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, create=True):
    fh = fs.create(path, 0o644, flags) if create else fs.open(path, flags)
    pos = 0
    for c in chunks:
        assert fs.write(fh, c, pos) == len(c)
        pos += len(c)
    fs.flush(fh)
    fs.release(fh)


def test_create_write_close_visible_to_client(fs, hdfs, base):
    data = random.Random(1).randbytes(3 * MiB + 5)
    write_file(fs, "/w.bin", [data[i:i + MiB] for i in range(0, len(data), MiB)])
    assert hdfs.read_file(f"{base}/w.bin") == data
    assert fs.getattr("/w.bin").size == len(data)


def test_random_offset_write_is_enotsup(fs, hdfs, base):
    fh = fs.create("/r.bin", 0o644, os.O_WRONLY | os.O_CREAT)
    fs.write(fh, b"a" * 10, 0)
    assert errno_of(fs.write, fh, b"b", 5) == errno.ENOTSUP
    assert errno_of(fs.write, fh, b"b", 20) == errno.ENOTSUP
    fs.write(fh, b"c" * 10, 10)
    fs.flush(fh)
    fs.release(fh)
    assert hdfs.read_file(f"{base}/r.bin") == b"a" * 10 + b"c" * 10


def test_append_and_truncate_on_open(fs, hdfs, base):
    hdfs.write_file(f"{base}/a.txt", b"hello ")
    write_file(fs, "/a.txt", [b"world"], flags=os.O_WRONLY | os.O_APPEND, create=False)
    assert hdfs.read_file(f"{base}/a.txt") == b"hello world"
    # open without O_TRUNC/O_APPEND: writing at the end appends, at 0 is refused
    fh = fs.open("/a.txt", os.O_WRONLY)
    assert errno_of(fs.write, fh, b"X", 0) == errno.ENOTSUP
    fs.release(fh)
    fh = fs.open("/a.txt", os.O_WRONLY)
    fs.write(fh, b"!", 11)
    fs.flush(fh)
    fs.release(fh)
    assert hdfs.read_file(f"{base}/a.txt") == b"hello world!"
    write_file(fs, "/a.txt", [b"new"], flags=os.O_WRONLY | os.O_TRUNC, create=False)
    assert hdfs.read_file(f"{base}/a.txt") == b"new"


def test_write_after_flush_reopens_for_append(fs, hdfs, base):
    fh = fs.create("/d.txt", 0o644, os.O_WRONLY | os.O_CREAT)
    fs.write(fh, b"one", 0)
    fs.flush(fh)                      # close(2) of a dup: file completed
    assert hdfs.read_file(f"{base}/d.txt") == b"one"
    fs.write(fh, b"two", 3)           # the other descriptor keeps writing
    fs.fsync(fh)
    fs.flush(fh)
    fs.release(fh)
    assert hdfs.read_file(f"{base}/d.txt") == b"onetwo"


def test_truncate_variants(fs, hdfs, base):
    hdfs.write_file(f"{base}/t", b"0123456789")
    assert errno_of(fs.truncate, "/t", 4) == errno.ENOTSUP
    fs.truncate("/t", 10)             # no-op
    fs.truncate("/t", 12)             # extend with zeros
    assert hdfs.read_file(f"{base}/t") == b"0123456789\0\0"
    fs.truncate("/t", 0)
    assert hdfs.read_file(f"{base}/t") == b""


def test_truncate_of_an_open_writer(fs, hdfs, base):
    fh = fs.create("/w", 0o644, os.O_WRONLY | os.O_CREAT)
    fs.write(fh, b"abcdef", 0)
    fs.truncate("/w", 6, fh)          # its current length: nothing to do
    assert errno_of(fs.truncate, "/w", 3, fh) == errno.ENOTSUP
    fs.truncate("/w", 0)              # no handle given (mfusepy drops it): our writer
    assert fs.getattr("/w").size == 0
    fs.write(fh, b"xy", 0)            # the file starts over at 0
    fs.flush(fh)
    fs.release(fh)
    assert hdfs.read_file(f"{base}/w") == b"xy"


def test_namespace_operations(fs, hdfs, base):
    fs.mkdir("/d", 0o750)
    assert errno_of(fs.mkdir, "/d", 0o755) == errno.EEXIST
    assert errno_of(fs.mkdir, "/nope/x", 0o755) == errno.ENOENT
    write_file(fs, "/d/f", [b"data"])
    assert errno_of(fs.rmdir, "/d") == errno.ENOTEMPTY
    assert errno_of(fs.rmdir, "/d/f") == errno.ENOTDIR
    assert errno_of(fs.unlink, "/d") == errno.EISDIR
    fs.rename("/d/f", "/d/g")
    assert errno_of(fs.getattr, "/d/f") == errno.ENOENT
    assert fs.getattr("/d/g").size == 4
    hdfs.write_file(f"{base}/d/h", b"other")
    fs.rename("/d/h", "/d/g")          # replaces, like POSIX rename
    assert hdfs.read_file(f"{base}/d/g") == b"other"
    fs.chmod("/d/g", 0o600)
    assert fs.getattr("/d/g").mode & 0o7777 == 0o600
    fs.utimens("/d/g", 1_600_000_000_000_000_000, 1_500_000_000_000_000_000)
    a = fs.getattr("/d/g")
    assert a.mtime_ns == 1_500_000_000_000_000_000 and a.atime_ns == 1_600_000_000_000_000_000
    fs.unlink("/d/g")
    fs.rmdir("/d")
    assert not hdfs.exists(f"{base}/d")
    assert errno_of(fs.getattr, "/d") == errno.ENOENT


def test_read_only_refuses_every_change(hdfs, base):
    hdfs.write_file(f"{base}/ro", b"keep")
    fs = make_fs(hdfs, base, read_only=True)
    try:
        for call in (lambda: fs.open("/ro", os.O_WRONLY), lambda: fs.create("/n", 0o644),
                     lambda: fs.mkdir("/x", 0o755), lambda: fs.unlink("/ro"),
                     lambda: fs.rename("/ro", "/r2"), lambda: fs.chmod("/ro", 0o777),
                     lambda: fs.truncate("/ro", 0), lambda: fs.utimens("/ro", None, None),
                     lambda: fs.rmdir("/")):
            assert errno_of(call) == errno.EROFS
        assert read_all(fs, "/ro") == b"keep"
    finally:
        fs.close()


def test_statfs_answers(fs):
    s = fs.statfs()
    assert s.blocks > 0 and s.bavail <= s.blocks and s.namemax == 255
