"""Never a wrong byte: cache checksums, file identity, stale handles, the read bound.

Issue 13, items 1, 2, 3 and 9, on real mounts (the hypothesis test at the
end drives the filesystem core directly, so that it can try many corruptions
in a few seconds; the FUSE tests above it cover the same read paths through
the kernel).
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from fuse_kit import hdfs_dir, pid_alive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuse_mount import mounts

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(240)]

MiB = 1 << 20


def blob(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_until(pred, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def unmount(m) -> None:  # type: ignore[no-untyped-def]
    """Unmount and wait for the daemon: its exit writes out the cache's queue."""
    mounts.unmount(str(m.path))
    assert wait_until(lambda: not pid_alive(m.pid)), "mount daemon did not exit"


def read_all(path: Path) -> bytes:
    with open(path, "rb", buffering=0) as fh:
        out = bytearray()
        while chunk := fh.read(MiB):
            out += chunk
    return bytes(out)


def cache_files(cache: Path) -> list[Path]:
    """The cached file versions (one data file each)."""
    return sorted(p for p in (cache / "data").rglob("*") if p.is_file())


# -- item 1: a corrupted cache is never served -------------------------------------------------
@pytest.mark.parametrize("splice", ["--splice", "--no-splice"])
def test_corrupted_cache_chunk_is_fetched_again_not_served(dfs, hdfs, mount_factory, tmp_path,
                                                           splice):
    """48 bytes flipped inside a cache file, then a remount with the same cache:
    the read is exact, the chunk came from HDFS again, and the metric says so."""
    base = hdfs_dir(hdfs, "crc")
    data = blob(5 * MiB + 1234, 1)
    hdfs.write_file(f"{base}/f", data)
    cache = tmp_path / "cache"
    args = ("--read-only", "--cache-dir", str(cache), splice)
    m1 = mount_factory(f"{dfs.uri}{base}", *args, name="fill")
    assert sha(read_all(m1.path / "f")) == sha(data)
    unmount(m1)
    (cache_file,) = cache_files(cache)
    with open(cache_file, "r+b") as fh:
        fh.seek(2 * MiB + 1000)
        raw = bytearray(fh.read(48))
        fh.seek(2 * MiB + 1000)
        fh.write(bytes(b ^ 0x5A for b in raw))

    m2 = mount_factory(f"{dfs.uri}{base}", *args, metrics=True, name="warm")
    assert sha(read_all(m2.path / "f")) == sha(data)
    metrics = m2.metrics()
    assert metrics["hdfs_fuse_cache_corrupt_chunks_total"] == 1
    assert metrics["hdfs_fuse_hdfs_read_bytes_total"] >= MiB  # the bad chunk, fetched again
    assert metrics["hdfs_fuse_cache_read_bytes_total"] >= 4 * MiB  # the good ones still served


# -- item 2: identity is the file id, not length + mtime ------------------------------------------
def test_rewrite_with_same_length_and_restored_mtime_is_not_served_from_cache(
        dfs, hdfs, mount_factory, tmp_path):
    """``distcp -pt`` / ``cp -p``: a new file of the same length with the old mtime."""
    base = hdfs_dir(hdfs, "ident")
    path = f"{base}/f"
    old, new = blob(3 * MiB + 5, 1), blob(3 * MiB + 5, 2)
    hdfs.write_file(path, old)
    before = hdfs.get_status(path)
    cache = tmp_path / "cache"
    args = ("--read-only", "--cache-dir", str(cache))
    m1 = mount_factory(f"{dfs.uri}{base}", *args, name="old")
    assert read_all(m1.path / "f") == old
    unmount(m1)

    hdfs.write_file(path, new)  # create with overwrite: a new inode
    hdfs.set_times(path, before.mtime_ms, before.atime_ms)
    after = hdfs.get_status(path)
    assert (after.length, after.mtime_ms) == (before.length, before.mtime_ms)

    m2 = mount_factory(f"{dfs.uri}{base}", *args, name="new")
    assert sha(read_all(m2.path / "f")) == sha(new)


def test_rewrite_with_restored_mtime_is_not_served_from_the_kernel_page_cache(
        dfs, hdfs, mount_factory):
    """The same rewrite within one mount: libfuse's auto_cache (size + mtime)
    would keep the old file's pages for the new one; the page cache is kept
    across opens only for the same file id."""
    base = hdfs_dir(hdfs, "pages")
    path = f"{base}/f"
    old, new = blob(2 * MiB + 3, 5), blob(2 * MiB + 3, 6)
    hdfs.write_file(path, old)
    before = hdfs.get_status(path)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--metadata-ttl", "0.5")
    assert read_all(m.path / "f") == old
    assert read_all(m.path / "f") == old  # the second open keeps the pages
    hdfs.write_file(path, new)
    hdfs.set_times(path, before.mtime_ms, before.atime_ms)
    time.sleep(1.0)  # past --metadata-ttl: the next open sees the new file id
    assert sha(read_all(m.path / "f")) == sha(new)


def test_old_and_new_version_open_at_once_each_read_their_own(dfs, hdfs, mount_factory):
    """Both versions would share the kernel's page cache of the path: a handle
    opened on the new file while one on the old file is open reads past it
    (direct I/O).  The old handle never gets the new file's bytes, the new one
    never the old file's, and a later open drops the old pages."""
    base = hdfs_dir(hdfs, "both")
    path = f"{base}/f"
    old, new = blob(8 * MiB, 7), blob(8 * MiB, 8)
    hdfs.write_file(path, old)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--metadata-ttl", "0.5",
                      "--read-ahead-max", "1M", "--kernel-read-ahead", "128K")
    fd = os.open(m.path / "f", os.O_RDONLY)
    try:
        assert os.pread(fd, 2 * MiB, 0) == old[:2 * MiB]  # now in the page cache
        hdfs.write_file(path, new)
        time.sleep(1.0)  # past --metadata-ttl
        assert sha(read_all(m.path / "f")) == sha(new)
        for off in range(0, len(old), MiB):
            try:
                got = os.pread(fd, MiB, off)
            except OSError as exc:
                assert exc.errno == errno.ESTALE, off
                continue
            assert got == old[off:off + len(got)], off
    finally:
        os.close(fd)
    assert sha(read_all(m.path / "f")) == sha(new)  # the old version's pages are gone


# -- item 3: an open handle never reads another file's bytes ---------------------------------------
@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache"])
def test_handle_open_across_an_overwrite_never_reads_the_new_file(dfs, hdfs, mount_factory,
                                                                  tmp_path, cached):
    """A same-length overwrite while a handle reads: every byte it returns is the
    old file's; what it cannot serve fails with ESTALE.  The new file's bytes
    never enter the cache file of the old one."""
    base = hdfs_dir(hdfs, "stale")
    path = f"{base}/f"
    size = 24 * MiB
    old, new = blob(size, 11), blob(size, 12)
    hdfs.write_file(path, old)
    cache = tmp_path / "cache"
    args = ["--read-only", "--read-ahead-max", "2M", "--kernel-read-ahead", "128K"]
    if cached:
        args += ["--cache-dir", str(cache)]
    m = mount_factory(f"{dfs.uri}{base}", *args, metrics=True)
    fd = os.open(m.path / "f", os.O_RDONLY)
    errors: list[int] = []
    try:
        assert os.pread(fd, MiB, 0) == old[:MiB]
        hdfs.write_file(path, new)  # same length, a new file id
        for off in range(MiB, size, MiB):
            try:
                got = os.pread(fd, MiB, off)
            except OSError as exc:
                errors.append(exc.errno)
                continue
            assert got == old[off:off + len(got)], f"bytes at {off} are not the old file's"
    finally:
        os.close(fd)
    assert set(errors) <= {errno.ESTALE}, errors
    # a new open sees the new file, whole
    assert wait_until(lambda: _reads(m.path / "f") == new, timeout=20)
    if cached:
        unmount(m)
        for cache_file in cache_files(cache):
            versions = _chunk_versions(cache_file, {"old": old, "new": new})
            assert len(versions) == 1, f"{cache_file.name} mixes versions: {versions}"


def _reads(path: Path) -> bytes | None:
    try:
        return read_all(path)
    except OSError:
        return None


def _chunk_versions(cache_file: Path, versions: dict[str, bytes]) -> set[str]:
    """Which of ``versions`` each cached 1 MiB chunk of a cache file belongs to."""
    found = set()
    with open(cache_file, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        for idx in range(-(-size // MiB)):
            try:
                start = os.lseek(fh.fileno(), idx * MiB, os.SEEK_DATA)
            except OSError:
                break
            if start >= (idx + 1) * MiB:
                continue  # a hole: not cached
            chunk = os.pread(fh.fileno(), MiB, idx * MiB)
            owners = {name for name, data in versions.items()
                      if data[idx * MiB:idx * MiB + len(chunk)] == chunk}
            found |= owners or {f"neither (chunk {idx})"}
    return found


# -- item 9: a stalled DataNode fails a read within --io-timeout ---------------------------------
@pytest.mark.minidfs_only
def test_stalled_datanode_fails_a_read_within_io_timeout(dfs, hdfs, mount_factory):
    """SEMANTICS.md: reads that cannot be served within --io-timeout fail with EIO.
    The kernel retries a failed read-ahead page once, synchronously: that retry
    must not wait a second --io-timeout."""
    timeout = 2.0
    base = hdfs_dir(hdfs, "stall")
    data = blob(8 * MiB, 3)
    hdfs.write_file(f"{base}/f", data)
    hdfs.write_file(f"{base}/g", data)
    m = mount_factory(f"{dfs.uri}{base}", "--read-only", "--io-timeout", str(timeout))
    os.stat(m.path / "g")
    fd = os.open(m.path / "f", os.O_RDONLY)
    try:
        assert os.pread(fd, 4096, 0) == data[:4096]
        dfs.faults.stall_reads(0)
        for what, call in [("read", lambda: os.pread(fd, MiB, 6 * MiB)),
                           ("open", lambda: os.close(os.open(m.path / "g", os.O_RDONLY)))]:
            t0 = time.monotonic()
            with pytest.raises(OSError) as ei:
                call()
            elapsed = time.monotonic() - t0
            assert ei.value.errno == errno.EIO, what
            assert 0.9 * timeout <= elapsed < 1.5 * timeout, (what, elapsed)
        dfs.faults.unstall()
        assert wait_until(lambda: _pread_ok(fd, 6 * MiB, data), timeout=20)
    finally:
        dfs.faults.unstall()
        os.close(fd)


def _pread_ok(fd: int, off: int, data: bytes) -> bool:
    try:
        return os.pread(fd, MiB, off) == data[off:off + MiB]
    except OSError:
        return False


# -- random corruption of the cache directory --------------------------------------------------
CORRUPTION = st.one_of(
    st.tuples(st.just("flip"), st.sampled_from(["data", "crc"]), st.floats(0, 1),
              st.integers(1, 64)),
    st.tuples(st.just("truncate"), st.sampled_from(["data", "crc"]), st.floats(0, 1),
              st.just(0)),
    st.tuples(st.just("zero"), st.sampled_from(["data", "crc"]), st.floats(0, 1),
              st.integers(1, 3 * MiB)),
    st.tuples(st.just("delete"), st.just("crc"), st.just(0.0), st.just(0)),
)


def _corrupt(target: Path, kind: str, where: float, amount: int, rnd: random.Random) -> None:
    if not target.exists():
        return
    size = target.stat().st_size
    if kind == "delete":
        target.unlink()
        return
    if kind == "truncate":
        os.truncate(target, int(size * where))
        return
    if size == 0:
        return
    pos = min(size - 1, int(size * where))
    with open(target, "r+b") as fh:
        if kind == "flip":
            for _ in range(amount):
                bit = rnd.randrange(8)
                at = min(size - 1, pos + rnd.randrange(4096))
                fh.seek(at)
                b = fh.read(1)[0]
                fh.seek(at)
                fh.write(bytes([b ^ (1 << bit)]))
        else:
            fh.seek(pos)
            fh.write(bytes(min(amount, size - pos)))


@pytest.fixture(scope="module")
def corruption_source(dfs, tmp_path_factory):
    """One HDFS file and a cache directory holding all of it (made once)."""
    import hdfs_client

    from fuse_mount.fs import HdfsFilesystem
    from fuse_mount.options import MountOptions

    client = hdfs_client.connect(dfs.uri)
    base = hdfs_dir(client, "fuzzcache")
    data = blob(4 * MiB + 777, 21)
    client.write_file(f"{base}/f", data)
    template = tmp_path_factory.mktemp("cache-template")
    fs = HdfsFilesystem(client, base, MountOptions(cache_dir=str(template), read_only=True))
    try:
        fh = fs.open("/f", os.O_RDONLY)
        assert _read_core(fs, fh, len(data), "read") == data
        fs.release(fh)
    finally:
        fs.close()
    yield client, base, data, template
    client.close()


def _read_core(fs, fh: int, size: int, how: str) -> bytes:  # type: ignore[no-untyped-def]
    """The whole file through one of the core's read paths, in FUSE-sized requests."""
    out = bytearray()
    step = 1008 * 1024  # the spliced request size: not chunk aligned
    for off in range(0, size, step):
        if how == "read":
            piece = bytes(fs.read(fh, step, off))
        elif how == "into":
            buf = bytearray(step)
            n = fs.read_into(fh, memoryview(buf), off)
            piece = bytes(buf[:n])
        else:  # what the adapter sends with --splice
            view = fs.read_cached(fh, step, off)
            piece = bytes(view) if view is not None else bytes(fs.read(fh, step, off))
        out += piece
    return bytes(out)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(corruptions=st.lists(CORRUPTION, min_size=1, max_size=3),
       how=st.sampled_from(["read", "into", "cached"]), seed=st.integers(0, 2**16))
def test_random_cache_corruption_never_yields_a_wrong_byte(corruption_source, tmp_path_factory,
                                                           corruptions, how, seed):
    from fuse_mount.fs import HdfsFilesystem
    from fuse_mount.options import MountOptions

    client, base, data, template = corruption_source
    cache = tmp_path_factory.mktemp("cache")
    shutil.rmtree(cache)
    subprocess.run(["cp", "-a", "--sparse=always", str(template), str(cache)], check=True)
    (lock := cache / ".lock").unlink(missing_ok=True)
    del lock
    (data_file,) = cache_files(cache)
    stores = sorted((cache / "crc").iterdir())  # the checksum logs
    assert stores
    rnd = random.Random(seed)
    for kind, target, where, amount in corruptions:
        for path in ([data_file] if target == "data" else stores):
            _corrupt(path, kind, where, amount, rnd)
    fs = HdfsFilesystem(client, base, MountOptions(cache_dir=str(cache), read_only=True))
    try:
        fh = fs.open("/f", os.O_RDONLY)
        assert _read_core(fs, fh, len(data), how) == data
        fs.release(fh)
        fh = fs.open("/f", os.O_RDONLY)  # and again, from what is cached now
        assert _read_core(fs, fh, len(data), how) == data
        fs.release(fh)
    finally:
        fs.close()
        shutil.rmtree(cache, ignore_errors=True)
