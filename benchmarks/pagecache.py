"""Evicting files from the kernel page cache, so "cold" passes start cold.

``echo 3 > /proc/sys/vm/drop_caches`` would do it for the whole machine, but
it needs root, throws away every other process's cache (this machine is
shared) and is global.  ``posix_fadvise(POSIX_FADV_DONTNEED)`` drops exactly
the files we name, needs only read access, and works for the local copy and
for the block files of a minidfs we started; a fresh FUSE mount starts with
an empty page cache for its own inodes anyway.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def evict_file(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        # dirty pages survive DONTNEED; write them back first
        try:
            os.fdatasync(fd)
        except OSError:
            pass
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def evict_tree(root: str) -> int:
    """Evict every regular file under ``root``; returns how many were evicted."""
    if not hasattr(os, "posix_fadvise"):
        log.warning("posix_fadvise is unavailable; cold passes may read from page cache")
        return 0
    n = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if evict_file(os.path.join(dirpath, name)):
                n += 1
    return n


def drop_all() -> str | None:
    """Drop the whole machine's clean page cache (root only); None on success, else why not.

    Opt-in (``--drop-caches``): it slows every other process on the machine.
    """
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as fh:
            fh.write("3\n")
        return None
    except OSError as exc:
        return f"cannot drop caches: {exc}"
