"""The mount's own warm-up (``--warmup``, the ``warmup`` volume attribute).

Once the mount answers, a background thread reads the named paths into the
disk cache, several files at a time, up to ``--cache-size``.  It reads
through the filesystem core, not through the kernel: no FUSE round trip, no
page-cache copy per byte, one Python call per chunk, which is what makes it
several times faster than ``hdfs-csi warmup`` (the same job done by any
reader through the mount) on many small files.  Everything else is the
ordinary read path: the same file-identity checks, read-ahead, checksummed
cache writes, so a file replaced in HDFS while it is warmed is never cached
under the wrong identity.

The paths are found through the core too (directories walked in name order,
globs matched per path segment with ``fnmatch``, ``**`` for any number of
directories), not through the mountpoint: the CSI node service moves the
mount from where it was made to the staging path, so the mountpoint the
daemon was given may be an empty directory by the time the warm-up looks.

Progress goes to the mount's log every few seconds and to
``hdfs_fuse_warmup_files`` / ``hdfs_fuse_warmup_bytes``; the end is one line,
``warm-up: warmed N files ...``, written once the chunks are on the disk.
It stops with the mount.
"""

from __future__ import annotations

import concurrent.futures as cf
import fnmatch
import logging
import stat
import os
import posixpath
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fuse_mount.warmup import WarmupResult
from hdfs_csi_common.units import format_size

if TYPE_CHECKING:
    from fuse_mount.fs import HdfsFilesystem

log = logging.getLogger(__name__)

#: files up to this size are warmed whole, in batches per directory
SMALL_FILE = 4 * 1024 * 1024
#: a batch's bytes (held in memory from its reads to its identity check) and files
BATCH_BYTES = 64 * 1024 * 1024
BATCH_FILES = 1000


class Warmer:
    def __init__(self, core: HdfsFilesystem, patterns: Sequence[str], *,
                 threads: int = 8, max_bytes: int | None = None, progress_every: float = 5.0):
        self.core = core
        self.patterns = list(patterns)
        self.threads = threads
        self.max_bytes = max_bytes
        self.progress_every = progress_every
        self.result = WarmupResult()
        self.done = threading.Event()
        self._stop = threading.Event()

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.run, name="warm-up", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception:  # noqa: BLE001 - a warm-up never takes the mount down
            log.exception("warm-up failed")
        finally:
            self.done.set()

    def _run(self) -> None:
        if self.core.cache is None:
            log.warning("warm-up of %s skipped: the mount has no disk cache (--cache-dir)",
                        ", ".join(self.patterns))
            return
        r = self.result
        t0 = time.perf_counter()
        files: list[str] = []
        for p in self.patterns:
            found = list(self.expand(p))
            if not found:
                log.warning("warm-up: %s: no file matches", p)
            files.extend(found)
        files = list(dict.fromkeys(files))     # a file two patterns name is read once
        log.info("warm-up: %d files under %s, up to %s", len(files), ", ".join(self.patterns),
                 format_size(self.max_bytes) if self.max_bytes else "no bound")
        used = 0
        lock = threading.Lock()
        last = [t0]
        metrics = self.core.metrics

        def one(rel: str) -> None:
            nonlocal used
            if self._stop.is_set():
                return
            try:
                size = self.core.status(rel).length
                with lock:
                    if self.max_bytes is not None and used + size > self.max_bytes:
                        r.skipped_files += 1
                        r.skipped_bytes += size
                        return
                    used += size
                n = self._read_whole(rel)
            except Exception as exc:  # noqa: BLE001 - report, go on with the others
                with lock:
                    r.failed.append((rel, str(exc) or type(exc).__name__))
                return
            counted(rel, n)

        def counted(rel: str, n: int) -> None:
            metrics.warmup_files.inc()
            metrics.warmup_bytes.inc(n)
            with lock:
                r.files += 1
                r.bytes += n
                now = time.perf_counter()
                if now - last[0] >= self.progress_every:
                    last[0] = now
                    r.seconds = now - t0
                    log.info("warm-up: %d/%d files, %s, %.0f MB/s", r.files, len(files),
                             format_size(r.bytes), r.rate / 1e6)

        def batch(entries: list[tuple[str, Any]]) -> None:
            if self._stop.is_set():
                return
            try:
                got = self.core.fill_cache_many(entries, pool.map)
            except Exception as exc:  # noqa: BLE001 - report, go on with the others
                with lock:
                    r.failed.extend((rel, str(exc) or type(exc).__name__) for rel, _ in entries)
                return
            for (rel, _st), n in zip(entries, got, strict=True):
                if n:
                    counted(rel, n)
                else:
                    with lock:
                        r.failed.append((rel, "replaced, gone or unreadable while warmed"))

        with cf.ThreadPoolExecutor(self.threads, thread_name_prefix="warm-up") as pool:
            small, large = self._split(files)
            for entries in self._batches(small):
                kept = []
                for rel, st in entries:   # the --cache-size bound, in the files' order
                    if self.max_bytes is not None and used + st.length > self.max_bytes:
                        r.skipped_files += 1
                        r.skipped_bytes += st.length
                    else:
                        used += st.length
                        kept.append((rel, st))
                if kept:
                    # One batch at a time: two in flight (one's listing and cache writes
                    # beside the other's reads) measured no faster (88 against 99 MB/s,
                    # within the noise) and held twice the memory.
                    batch(kept)
            list(pool.map(one, large))
        if self._stop.is_set():           # the mount is going away: its cache closes itself
            log.info("warm-up stopped with the mount after %d files", r.files)
            return
        self.core.cache.flush()           # the chunks are on the disk when we say so
        r.seconds = time.perf_counter() - t0
        log.info("warm-up: %s", r.summary())
        for path, reason in r.failed[:20]:
            log.warning("warm-up: %s: %s", path, reason)

    def _split(self, files: list[str]) -> tuple[list[tuple[str, Any]], list[str]]:
        """(small files with their statuses, the others): small ones are read whole in
        batches per directory (:meth:`HdfsFilesystem.fill_cache_many`), the others
        through the read path with its read-ahead."""
        small: list[tuple[str, Any]] = []
        large: list[str] = []
        for rel in files:
            try:
                st = self.core.status(rel)
            except Exception:  # noqa: BLE001 - gone meanwhile: the read path says so
                large.append(rel)
                continue
            (small.append((rel, st)) if 0 < st.length <= SMALL_FILE else large.append(rel))
        return small, large

    @staticmethod
    def _batches(small: list[tuple[str, Any]]) -> Iterator[list[tuple[str, Any]]]:
        """Consecutive files of one directory, at most BATCH_BYTES / BATCH_FILES each:
        what one batch holds in memory until its identity check."""
        out: list[tuple[str, Any]] = []
        size = 0
        parent = None
        for rel, st in small:
            d = posixpath.dirname(rel)
            if out and (d != parent or size + st.length > BATCH_BYTES
                        or len(out) >= BATCH_FILES):
                yield out
                out, size = [], 0
            parent = d
            out.append((rel, st))
            size += st.length
        if out:
            yield out

    # -- finding the files ----------------------------------------------------------------
    def expand(self, pattern: str) -> list[str]:
        """Mount-relative paths (``/a/b``) of the regular files ``pattern`` names."""
        parts = [p for p in pattern.strip("/").split("/") if p not in ("", ".")]
        return sorted(set(self._match("/", parts)))

    def _match(self, base: str, parts: list[str]) -> list[str]:
        if not parts:
            return self._files_under(base)
        head, rest = parts[0], parts[1:]
        if head == "**":
            out = self._match(base, rest)
            for name, is_dir in self._children(base):
                if is_dir:
                    out += self._match(_join(base, name), parts)
            return out
        if not (set(head) & set("*?[")):
            return self._match(_join(base, head), rest) if self._exists(_join(base, head)) \
                else []
        out = []
        for name, _is_dir in self._children(base):
            if fnmatch.fnmatchcase(name, head):
                out += self._match(_join(base, name), rest)
        return out

    def _files_under(self, path: str) -> list[str]:
        try:
            if not self.core.status(path).is_dir:
                return [path]
        except Exception:  # noqa: BLE001 - gone meanwhile: nothing to warm
            return []
        out: list[str] = []
        for name, is_dir in self._children(path):
            out += self._files_under(_join(path, name)) if is_dir else [_join(path, name)]
        return out

    def _children(self, path: str) -> list[tuple[str, bool]]:
        try:
            entries = self.core.readdir(path)
        except Exception:  # noqa: BLE001 - not a directory, or gone
            return []
        return sorted((n, stat.S_ISDIR(mode)) for n, mode in entries if n not in (".", ".."))

    def _exists(self, path: str) -> bool:
        try:
            self.core.status(path)
            return True
        except Exception:  # noqa: BLE001
            return False

    def _read_whole(self, rel: str) -> int:
        core = self.core
        fh = core.open(rel, os.O_RDONLY)
        try:
            chunk = core.cache.chunk_size if core.cache is not None else 1 << 20
            offset = 0
            while not self._stop.is_set():
                data = core.read(fh, 8 * chunk, offset)
                if not data:
                    break
                offset += len(data)
            return offset
        finally:
            core.release(fh)


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"
