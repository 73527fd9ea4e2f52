"""``hdfs-csi warmup``: read a dataset once through a mount, so that the first
epoch of a training job is served from the node's disk cache.

This is what Fluid's DataLoad and ``juicefs warmup`` do for their mounts.  A
mount with a data cache (``cacheSize``) keeps every range it reads; reading
the files of a dataset ahead of the job, many at a time, fills the cache at
the speed of parallel HDFS reads instead of at the pace of the job's first
epoch.  It works through the mount's files like any reader, so it needs no
access to the daemon, and the bytes it caches are checked exactly as a
reader's would be.

* Files are read with ``sendfile(2)`` into ``/dev/null`` (a large file as
  several segments at once, each through a descriptor of its own): the data never
  enters Python, and the kernel's read-ahead on the FUSE file stays on.
  After each file its pages are dropped from the page cache
  (``POSIX_FADV_DONTNEED``): the copy worth keeping is the one on the disk
  cache, not a second one in RAM.
* ``--max-bytes`` bounds what is read (give the mount's ``cacheSize``):
  warming more than the cache holds would evict the first files to make room
  for the last.  A file that no longer fits is skipped, and counted.
* An unreadable file is reported and the rest goes on; the exit status is 1
  if any file failed.  A file changed in HDFS while it is warmed is simply
  read in whichever version the mount serves (the mount checks identity and
  checksums; the warm-up only asks).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import glob
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field

from hdfs_csi_common.units import format_size, parse_size

_CHUNK = 8 << 20          # one sendfile call; the kernel splits it into FUSE requests
#: A file larger than this is read as several segments at once, each through a
#: descriptor of its own (the mount reads ahead per open file): one FUSE stream
#: is limited by one HDFS stream, a dataset of a few big shards would otherwise
#: warm at the speed of a few streams.
SEGMENT = 64 << 20
_GLOB_CHARS = frozenset("*?[")


@dataclass
class WarmupResult:
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped_files: int = 0          #: over the --max-bytes budget
    skipped_bytes: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)   #: (path, reason)

    @property
    def rate(self) -> float:
        """Bytes per second."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        text = (f"warmed {self.files:,} files, {format_size(self.bytes)} in "
                f"{self.seconds:.1f} s ({self.rate / 1e6:,.0f} MB/s)")
        if self.skipped_files:
            text += (f"; {self.skipped_files:,} files ({format_size(self.skipped_bytes)}) "
                     "skipped: over --max-bytes")
        if self.failed:
            text += f"; {len(self.failed):,} failed"
        return text


def expand(paths: Iterable[str]) -> Iterator[str]:
    """Regular files named by ``paths``: files, directories (walked in name order),
    and globs (``**`` crosses directories).  A path that names nothing raises
    ``FileNotFoundError``: a typo must not warm nothing and report success."""
    for p in paths:
        if _GLOB_CHARS & set(p):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                raise FileNotFoundError(f"{p}: no file matches")
            for m in matches:
                yield from _walk(m)
        else:
            if not os.path.lexists(p):
                raise FileNotFoundError(f"{p}: no such file or directory")
            yield from _walk(p)


def _walk(path: str) -> Iterator[str]:
    st = os.stat(path)
    if stat.S_ISREG(st.st_mode):
        yield path
    elif stat.S_ISDIR(st.st_mode):
        for top, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                yield os.path.join(top, name)


def read_list(source: str) -> list[str]:
    """Paths from a file list, one per line ('-' is standard input); blank lines and
    lines starting with '#' are left out."""
    fh = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115
    try:
        return [ln.rstrip("\n") for ln in fh if ln.strip() and not ln.startswith("#")]
    finally:
        if fh is not sys.stdin:
            fh.close()


class _Budget:
    def __init__(self, limit: int | None):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.limit is not None and self.used + n > self.limit:
                return False
            self.used += n
            return True


def _read_range(path: str, null_fd: int, start: int, end: int | None) -> int:
    """Read ``[start, end)`` of ``path`` (to its end when ``end`` is None); bytes read."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        stop = os.fstat(fd).st_size if end is None else end
        offset = start
        while offset < stop:
            n = os.sendfile(null_fd, fd, offset, min(_CHUNK, stop - offset))
            if n == 0:      # the file shrank under us: what is there has been read
                break
            offset += n
        try:
            os.posix_fadvise(fd, start, offset - start, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        return offset - start
    finally:
        os.close(fd)


def warm(files: Iterable[str], *, threads: int = 8, max_bytes: int | None = None,
         progress: Callable[[WarmupResult], None] | None = None,
         progress_every: float = 5.0) -> WarmupResult:
    """Read every file once, ``threads`` at a time; see the module docstring."""
    if threads < 1:
        raise ValueError("threads must be at least 1")
    result = WarmupResult()
    budget = _Budget(max_bytes)
    lock = threading.Lock()
    t0 = time.perf_counter()
    last = [t0]
    null_fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)

    def count(n: int, *, new_file: bool) -> None:
        with lock:
            result.files += new_file
            result.bytes += n
            now = time.perf_counter()
            if progress is not None and now - last[0] >= progress_every:
                last[0] = now
                result.seconds = now - t0
                progress(result)

    def failed(path: str, exc: OSError) -> None:
        with lock:
            if all(p != path for p, _ in result.failed):
                result.failed.append((path, exc.strerror or str(exc)))

    def segment(path: str, start: int, end: int) -> None:
        try:
            count(_read_range(path, null_fd, start, end), new_file=False)
        except OSError as exc:
            failed(path, exc)

    def one(path: str) -> None:
        try:
            size = os.stat(path).st_size
            if not budget.take(size):
                with lock:
                    result.skipped_files += 1
                    result.skipped_bytes += size
                return
            if size <= SEGMENT:
                count(_read_range(path, null_fd, 0, None), new_file=True)
                return
        except OSError as exc:
            failed(path, exc)
            return
        count(0, new_file=True)
        for start in range(0, size, SEGMENT):
            submit(segment, path, start, min(start + SEGMENT, size))

    pool = cf.ThreadPoolExecutor(threads, thread_name_prefix="warmup")
    pending: set[cf.Future[None]] = set()
    pending_lock = threading.Lock()

    def submit(fn: Callable[..., None], *a: object) -> None:
        fut = pool.submit(fn, *a)
        with pending_lock:
            pending.add(fut)

    def drain(limit: int) -> None:
        """Wait until at most ``limit`` tasks are pending (segments add tasks as they go)."""
        while True:
            with pending_lock:
                live = {f for f in pending if not f.done()}
                pending.clear()
                pending.update(live)
                if len(live) <= limit:
                    return
            cf.wait(live, return_when=cf.FIRST_COMPLETED)

    try:
        # bounded submission: a listing of millions of files is not held as futures
        for path in files:
            submit(one, path)
            drain(threads * 4)
        drain(0)
    finally:
        pool.shutdown(wait=True)
        os.close(null_fd)
    result.seconds = time.perf_counter() - t0
    return result


# -- command line -------------------------------------------------------------------

def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Example: hdfs-csi warmup --max-bytes 50Gi /mnt/data/train  "
                     "(see deploy/examples/warmup-job.yaml for a Kubernetes Job)")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files, directories (read recursively) or globs ('**' crosses "
                             "directories) on a mount")
    parser.add_argument("--files-from", metavar="FILE",
                        help="also read the paths listed in FILE, one per line ('-': stdin)")
    parser.add_argument("--threads", type=int, default=8,
                        help="files read at a time; each is one stream of FUSE reads")
    parser.add_argument("--max-bytes", type=parse_size, default=None, metavar="SIZE",
                        help="read at most this much (give the mount's cacheSize: more would "
                             "evict what was warmed first); default: no bound")
    parser.add_argument("--json", metavar="FILE",
                        help="write the result as JSON to FILE ('-': stdout)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    paths = list(args.paths)
    if args.files_from:
        paths += read_list(args.files_from)
    if not paths:
        print("hdfs-csi warmup: name at least one PATH or --files-from", file=sys.stderr)
        return 2
    if args.threads < 1:
        print("hdfs-csi warmup: --threads must be at least 1", file=sys.stderr)
        return 2
    try:
        files = list(expand(paths))
    except OSError as exc:
        print(f"hdfs-csi warmup: {exc}", file=sys.stderr)
        return 2

    def show(r: WarmupResult) -> None:
        print(f"hdfs-csi warmup: {r.files:,}/{len(files):,} files, {format_size(r.bytes)}, "
              f"{r.rate / 1e6:,.0f} MB/s", file=sys.stderr, flush=True)

    result = warm(files, threads=args.threads, max_bytes=args.max_bytes,
                  progress=None if args.quiet else show)
    print(f"hdfs-csi warmup: {result.summary()}", file=sys.stderr)
    for path, reason in result.failed[:20]:
        print(f"hdfs-csi warmup: {path}: {reason}", file=sys.stderr)
    if args.json:
        doc = {**asdict(result), "rate_bytes_per_s": result.rate}
        if args.json == "-":
            json.dump(doc, sys.stdout, indent=2)
            print()
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=2)
    return 1 if result.failed else 0
