"""Writes and every errno of the table through real FUSE mounts over both backends.

What is written through the mount is read back with the direct client, so a
test passes only if HDFS really holds the bytes.
"""

from __future__ import annotations

import errno
import os
import random
import stat
import time

import pytest
from fuse_kit import hdfs_dir

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]

MiB = 1 << 20


@pytest.fixture
def rw(dfs, hdfs, mount_factory):
    base = hdfs_dir(hdfs, "rw")
    m = mount_factory(f"{dfs.uri}{base}", "--metadata-ttl", "2")
    return m.path, base


def expect_errno(code, fn, *args):
    with pytest.raises(OSError) as ei:
        fn(*args)
    assert ei.value.errno == code, f"{fn} -> {ei.value!r}, expected {errno.errorcode[code]}"


def test_write_read_back_through_client(rw, hdfs):
    mnt, base = rw
    data = random.Random(2).randbytes(int(2.7 * MiB))  # several 1 MiB blocks
    with open(mnt / "out.bin", "wb") as f:
        for i in range(0, len(data), 200_000):   # odd sizes: not block or request aligned
            f.write(data[i:i + 200_000])
    assert hdfs.read_file(f"{base}/out.bin") == data
    assert os.stat(mnt / "out.bin").st_size == len(data)
    assert (mnt / "out.bin").read_bytes() == data


def test_append_truncate_and_overwrite(rw, hdfs):
    mnt, base = rw
    (mnt / "log.txt").write_bytes(b"line1\n")
    with open(mnt / "log.txt", "ab") as f:
        f.write(b"line2\n")
    assert hdfs.read_file(f"{base}/log.txt") == b"line1\nline2\n"
    assert (mnt / "log.txt").read_bytes() == b"line1\nline2\n"
    (mnt / "log.txt").write_bytes(b"new")          # O_TRUNC on an existing file
    assert hdfs.read_file(f"{base}/log.txt") == b"new"
    os.truncate(mnt / "log.txt", 0)
    assert hdfs.read_file(f"{base}/log.txt") == b""
    assert os.stat(mnt / "log.txt").st_size == 0


def test_random_offset_write_is_enotsup(rw, hdfs):
    mnt, base = rw
    fd = os.open(mnt / "seq.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"0123456789")
        expect_errno(errno.ENOTSUP, os.pwrite, fd, b"X", 3)
        os.write(fd, b"abc")
        os.fsync(fd)
        # hsync: the NameNode has the length (getFileInfo) ...
        assert hdfs.get_status(f"{base}/seq.bin").length == 13
        # ... but the bytes of a block under construction are not in getBlockLocations'
        # fileLength: an hdfs-native reader sees the completed blocks only (none here)
        assert hdfs.read_file(f"{base}/seq.bin") == b""
    finally:
        os.close(fd)
    assert hdfs.read_file(f"{base}/seq.bin") == b"0123456789abc"  # close: complete
    expect_errno(errno.ENOTSUP, os.truncate, mnt / "seq.bin", 5)


def test_namespace_calls(rw, hdfs):
    mnt, base = rw
    os.mkdir(mnt / "d", 0o750)
    assert stat.S_IMODE(os.stat(mnt / "d").st_mode) == 0o750
    (mnt / "d" / "a").write_bytes(b"A")
    os.rename(mnt / "d" / "a", mnt / "d" / "b")
    assert sorted(os.listdir(mnt / "d")) == ["b"]
    assert hdfs.read_file(f"{base}/d/b") == b"A"
    (mnt / "c").write_bytes(b"C")
    os.rename(mnt / "c", mnt / "d" / "b")          # replace an existing file
    assert hdfs.read_file(f"{base}/d/b") == b"C"
    os.rename(mnt / "d", mnt / "e")                # directories too
    assert hdfs.exists(f"{base}/e/b") and not hdfs.exists(f"{base}/d")
    os.chmod(mnt / "e" / "b", 0o640)
    assert hdfs.get_status(f"{base}/e/b").permission == 0o640
    os.utime(mnt / "e" / "b", (1_000_000, 2_000_000))
    st = os.stat(mnt / "e" / "b")
    assert int(st.st_mtime) == 2_000_000 and int(st.st_atime) == 1_000_000
    assert hdfs.get_status(f"{base}/e/b").mtime_ms == 2_000_000_000
    os.chown(mnt / "e" / "b", 4321, 8765)          # root mounts as the HDFS superuser
    st = os.stat(mnt / "e" / "b")
    assert (st.st_uid, st.st_gid) == (4321, 8765)
    assert hdfs.get_status(f"{base}/e/b").owner == "4321"
    os.unlink(mnt / "e" / "b")
    os.rmdir(mnt / "e")
    assert os.listdir(mnt) == [] and not hdfs.exists(f"{base}/e")


def test_errnos(rw, hdfs):
    mnt, base = rw
    os.mkdir(mnt / "full")
    (mnt / "full" / "x").write_bytes(b"x")
    (mnt / "file").write_bytes(b"f")
    expect_errno(errno.ENOENT, os.stat, mnt / "missing")
    expect_errno(errno.ENOENT, open, mnt / "missing", "rb")
    expect_errno(errno.EEXIST, os.mkdir, mnt / "full")
    expect_errno(errno.ENOTEMPTY, os.rmdir, mnt / "full")
    expect_errno(errno.ENOTDIR, os.rmdir, mnt / "file")
    expect_errno(errno.ENOTDIR, os.mkdir, mnt / "file" / "sub")
    expect_errno(errno.EISDIR, os.unlink, mnt / "full")
    expect_errno(errno.EISDIR, open, mnt / "full", "wb")
    expect_errno(errno.EEXIST, os.open, mnt / "file", os.O_WRONLY | os.O_CREAT | os.O_EXCL)


def test_quota_is_edquot(rw, hdfs):
    mnt, base = rw
    os.mkdir(mnt / "q")
    hdfs.set_quota(f"{base}/q", 2, None)           # the directory itself + one file
    (mnt / "q" / "one").write_bytes(b"1")
    expect_errno(errno.EDQUOT, open, mnt / "q" / "two", "wb")
    os.mkdir(mnt / "s")
    hdfs.set_quota(f"{base}/s", None, MiB)         # less than one block
    with pytest.raises(OSError) as ei:             # reported at write or, at the latest, close
        with open(mnt / "s" / "big", "wb") as f:
            f.write(b"z" * (2 * MiB))
    assert ei.value.errno == errno.EDQUOT


def test_permission_denied_is_eacces(dfs, hdfs, mount_factory):
    base = hdfs_dir(hdfs, "perm")
    hdfs.write_file(f"{base}/secret", b"s")
    hdfs.set_permission(f"{base}/secret", 0o600)
    hdfs.set_permission(base, 0o755)
    m = mount_factory(f"{dfs.uri}{base}", "--user", "alice")
    expect_errno(errno.EACCES, open, m.path / "secret", "rb")
    expect_errno(errno.EACCES, open, m.path / "new", "wb")
    expect_errno(errno.EACCES, os.mkdir, m.path / "d")
    expect_errno(errno.EACCES, os.unlink, m.path / "secret")
    assert hdfs.exists(f"{base}/secret") and not hdfs.exists(f"{base}/new")


def test_changes_through_mount_are_seen_at_once(rw, hdfs):
    """Own changes invalidate the caches: no TTL wait for them."""
    mnt, base = rw
    os.listdir(mnt)
    (mnt / "fresh").write_bytes(b"1234")
    assert "fresh" in os.listdir(mnt)
    assert os.stat(mnt / "fresh").st_size == 4
    os.unlink(mnt / "fresh")
    assert "fresh" not in os.listdir(mnt)


def test_changed_in_hdfs_seen_after_ttl(rw, hdfs):
    mnt, base = rw
    hdfs.write_file(f"{base}/ext", b"old contents")
    assert (mnt / "ext").read_bytes() == b"old contents"
    hdfs.write_file(f"{base}/ext", b"NEW", overwrite=True)
    time.sleep(2.5)                                 # --metadata-ttl 2
    assert os.stat(mnt / "ext").st_size == 3
    assert (mnt / "ext").read_bytes() == b"NEW"
