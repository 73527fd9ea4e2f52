"""How fast ``hdfs-csi warmup`` fills a mount's disk cache, against direct parallel reads.

``python -m benchmarks.warmup_rate [--small-files 2000] [--shards 8] [--shard-size 64M]
[--threads 8] [--rounds 3]``

One minidfs (a child process), one dataset of small files (~110 KB, the
ImageFolder shape) and one of large shards.  For each, interleaved rounds of:

* ``direct``: ``--threads`` threads of the in-process client (hdfs-native),
  each reading whole files, the aggregate bytes/s;
* ``warmup``: a fresh mount with an empty disk cache, and ``warmup.warm``
  (``hdfs-csi warmup``) with the same number of threads through it;
* ``daemon``: a fresh mount with ``--warmup .``, the mount's own warm-up
  (what the ``warmup`` volume attribute does), timed by its own log line.

The ratios warmup / direct and daemon / direct are the figure the first-epoch
issue sets (>= 0.8); the median round is reported.  The DataNode's page cache is warm for both
(each round reads the same bytes), so the figure compares the clients, not
the disk.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import random
import re
import shutil
import tempfile
import time

from benchmarks.environment import PROFILES, MiniDfsProcess, MountProcess, wait_for_log
from fuse_mount import warmup
from hdfs_csi_common.units import parse_size


def _write(client, path: str, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with client.create(path, overwrite=True, create_parent=True) as w:
        view = memoryview(data)
        while view:
            view = view[w.write(view):]


def _direct(client, paths: list[str], threads: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    def one(p: str) -> int:
        with client.open_reader(p) as r:
            pos = 0
            while pos < r.size:
                pos += len(r.read_range(pos, min(8 << 20, r.size - pos)))
            return pos

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as pool:
        n = sum(pool.map(one, paths))
    return time.perf_counter() - t0, n


def _daemon_seconds(log_file: str, files: int, timeout: float = 600) -> float:
    """Seconds the mount's own warm-up took, from its last log line."""
    hit = wait_for_log(log_file, re.compile(rf"warm-up: warmed {files:,} files, .* in "
                                            r"([0-9.]+) s"), timeout)
    if hit is None:
        raise TimeoutError(f"no end of the warm-up in {log_file}")
    return float(hit.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.warmup_rate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small-files", type=int, default=2000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--shard-size", type=parse_size, default=parse_size("64M"))
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="local",
                    help="throttle minidfs like a cluster (as hdfs-csi bench --profile): "
                         "on 'local' minidfs shares this machine's cores with the mount")
    args = ap.parse_args(argv)

    import hdfs_client
    from minidfs.process import MiniDFSProcess

    work = args.workdir or tempfile.mkdtemp(prefix="warmup-rate-")
    rnd = random.Random(5)
    results: dict[str, dict[str, float]] = {}
    try:
        throttle = MiniDfsProcess(work, profile=PROFILES[args.profile],
                                  block_size=128 << 20).options()
        with MiniDFSProcess(os.path.join(work, "dfs"), datanodes=1,
                            log_file=os.path.join(work, "minidfs.log"), **throttle) as dfs:
            client = hdfs_client.connect(dfs.uri)
            sets = {
                "small": [(f"/ds/small/c{i % 10}/f{i:05d}", rnd.randint(60_000, 160_000))
                          for i in range(args.small_files)],
                "shards": [(f"/ds/shards/s{i:02d}", args.shard_size) for i in range(args.shards)],
            }
            blob = rnd.randbytes(max(args.shard_size, 200_000))
            for name, files in sets.items():
                for path, size in files:
                    _write(client, path, blob[:size])
                paths = [p for p, _ in files]
                total = sum(s for _, s in files)
                _direct(client, paths, args.threads)           # DataNode page cache warm
                rounds = []
                for r in range(args.rounds):
                    td, n = _direct(client, paths, args.threads)
                    assert n == total
                    mnt = os.path.join(work, f"mnt-{name}-{r}")
                    cache = os.path.join(work, f"cache-{name}-{r}")
                    with MountProcess(f"{dfs.uri}/ds/{name}", mnt, cache_dir=cache,
                                      log_file=os.path.join(work, "mount.log"),
                                      pid_file=mnt + ".pid",
                                      extra_args=["--read-only", "--cache-size",
                                                  str(2 * total + (1 << 30))], timeout=120):
                        files_on_mount = list(warmup.expand([mnt]))
                        res = warmup.warm(files_on_mount, threads=args.threads)
                    assert res.bytes == total and not res.failed, res.summary()
                    shutil.rmtree(cache, ignore_errors=True)
                    mlog = os.path.join(work, f"mount-{name}-{r}.log")
                    with MountProcess(f"{dfs.uri}/ds/{name}", mnt, cache_dir=cache,
                                      log_file=mlog, pid_file=mnt + ".pid",
                                      extra_args=["--read-only", "--warmup", ".",
                                                  "--cache-size", str(2 * total + (1 << 30))],
                                      timeout=120):
                        tdaemon = _daemon_seconds(mlog, len(files))
                    shutil.rmtree(cache, ignore_errors=True)
                    rounds.append((td, res.seconds, tdaemon))
                rounds.sort(key=lambda p: p[0] / p[1])
                td, tw, _ = rounds[len(rounds) // 2]
                tdm = sorted(r[2] / r[0] for r in rounds)[len(rounds) // 2]   # daemon / direct
                results[name] = {"files": len(files), "bytes": total,
                                 "direct_MBps": total / td / 1e6, "warmup_MBps": total / tw / 1e6,
                                 "ratio": td / tw,
                                 "ratio_min": min(r[0] / r[1] for r in rounds),
                                 "ratio_max": max(r[0] / r[1] for r in rounds),
                                 "daemon_ratio": 1 / tdm,
                                 "daemon_ratio_min": min(r[0] / r[2] for r in rounds),
                                 "daemon_ratio_max": max(r[0] / r[2] for r in rounds)}
                shown = ", ".join(f"{k}={v:.3g}" for k, v in results[name].items())
                print(f"{name:7s} {shown}", flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
