"""What one small-file read through a mount costs: FUSE requests, NameNode RPCs,
DataNode reads, CPU of the daemon, wall time.

``python -m benchmarks.per_file_cost [--files 500] [--size 110K] [--pattern listed|blind]``

The first-epoch issue asks for this table before and after each cut.  One
minidfs runs inside this process (so its per-method call counters can be
read), the mount is a separate daemon as in production (no disk cache, first
epoch: nothing cached), and the files are read the ImageFolder way: whole
files, in shuffled order, one at a time.  ``listed`` lists every class
directory first (what ``torchvision.datasets.ImageFolder`` does at start),
``blind`` opens the paths straight away.  Counts are per file: the deltas
over the read loop divided by the number of files.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import tempfile
import time

from benchmarks.environment import MountProcess
from fuse_mount.metrics import scrape
from fuse_mount.mounts import process_tree
from hdfs_csi_common.units import parse_size

_TICK = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fuse_ops(m: dict[str, float]) -> dict[str, float]:
    ops = {}
    for name, value in m.items():
        hit = re.fullmatch(r'hdfs_fuse_request_seconds_count\{op="([^"]+)"\}', name)
        if hit:
            ops[hit.group(1)] = value
    return ops


def _cpu_seconds(pid: int) -> float:
    """CPU time of the mount: the process and its children (keeper + daemon)."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])     # utime + stime
    return total / _TICK


def _delta(after: dict[str, float], before: dict[str, float], n: int) -> dict[str, float]:
    keys = set(after) | set(before)
    out = {k: (after.get(k, 0) - before.get(k, 0)) / n for k in sorted(keys)}
    return {k: round(v, 3) for k, v in out.items() if v}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.per_file_cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--size", type=parse_size, default=parse_size("110K"))
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--pattern", choices=("listed", "blind"), default="listed")
    ap.add_argument("--mount-args", default="", help="extra mount flags (quoted)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import hdfs_client
    from minidfs import MiniDFS

    work = tempfile.mkdtemp(prefix="per-file-cost-")
    rnd = random.Random(11)
    try:
        with MiniDFS(os.path.join(work, "dfs"), datanodes=1) as dfs:
            client = hdfs_client.connect(dfs.uri)
            blob = rnd.randbytes(args.size)
            rels = [f"c{i % args.classes:02d}/f{i:05d}.jpg" for i in range(args.files)]
            for rel in rels:
                with client.create(f"/ds/{rel}", overwrite=True, create_parent=True) as w:
                    view = memoryview(blob)
                    while view:
                        view = view[w.write(view):]
            mnt = os.path.join(work, "mnt")
            port = _free_port()
            extra = ["--read-only", "--metrics-port", str(port), *args.mount_args.split()]
            with MountProcess(f"{dfs.uri}/ds", mnt, cache_dir=None,
                              log_file=os.path.join(work, "mount.log"),
                              pid_file=os.path.join(work, "mount.pid"), extra_args=extra,
                              timeout=120) as proc:
                pid = proc.daemon_pid()
                assert pid is not None
                order = list(rels)
                rnd.shuffle(order)
                calls0 = dict(dfs.faults.calls)
                fuse0 = _fuse_ops(scrape(port))
                cpu0 = _cpu_seconds(pid)
                t0 = time.perf_counter()
                if args.pattern == "listed":
                    for c in range(args.classes):
                        os.listdir(os.path.join(mnt, f"c{c:02d}"))
                for rel in order:
                    with open(os.path.join(mnt, rel), "rb", buffering=0) as fh:
                        while fh.read(1 << 20):
                            pass
                wall = time.perf_counter() - t0
                cpu = _cpu_seconds(pid) - cpu0
                n = len(order)
                result = {
                    "pattern": args.pattern, "files": n, "file_bytes": args.size,
                    "files_per_s": round(n / wall, 1),
                    "wall_ms_per_file": round(wall / n * 1e3, 3),
                    "daemon_cpu_ms_per_file": round(cpu / n * 1e3, 3),
                    "fuse_requests_per_file": _delta(_fuse_ops(scrape(port)), fuse0, n),
                    "hdfs_calls_per_file": _delta(dict(dfs.faults.calls), calls0, n),
                }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
