"""Throughput of minidfs with hdfs-native: write, 1-stream read, N-stream read.

Not a test: run ``python -m minidfs.bench`` (see ``--help``).  By default
minidfs runs as a child process so that the server and the measuring client
do not share a GIL, which is how the FUSE mount and the benchmarks use it.

Reported numbers are MB/s (10^6 bytes per second) over the wall time of
each phase; each read phase reads every test file completely with
``read_range`` calls of ``--chunk`` bytes, verifying lengths.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from typing import Any

from hdfs_csi_common.units import parse_size


def _client(uri: str) -> Any:
    import hdfs_native

    return hdfs_native.Client(uri)


def _write(uri: str, path: str, size: int, chunk: bytes) -> None:
    client = _client(uri)
    with client.create(path, _write_options()) as w:
        left = size
        while left > 0:
            n = min(left, len(chunk))
            w.write(chunk[:n] if n < len(chunk) else chunk)
            left -= n


def _write_options() -> Any:
    import hdfs_native

    return hdfs_native.WriteOptions(overwrite=True)


def _read(client: Any, path: str, chunk: int) -> int:
    total = 0
    with client.read(path) as r:
        size = r.size
        pos = 0
        while pos < size:
            n = min(chunk, size - pos)
            data = r.read_range(pos, n)
            if len(data) != n:
                raise RuntimeError(f"short read at {pos}: {len(data)} != {n}")
            total += n
            pos += n
    return total


def _parallel(fn: Any, args_list: list[tuple[Any, ...]]) -> float:
    errors: list[BaseException] = []

    def run(args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in args_list]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"benchmark worker failed: {errors[0]!r}") from errors[0]
    return elapsed


def run_bench(uri: str, *, size: int, streams: int, chunk: int, rounds: int) -> dict[str, Any]:
    payload = os.urandom(min(chunk, 4 * 1024 * 1024))
    files = [f"/bench/file{i}" for i in range(streams)]
    client = _client(uri)
    client.mkdirs("/bench", 0o755, True)

    results: dict[str, Any] = {"file_size": size, "streams": streams, "chunk": chunk}
    # write: one stream, then `streams` in parallel
    t = _parallel(_write, [(uri, files[0], size, payload)])
    results["write_1_stream_MBps"] = size / t / 1e6
    t = _parallel(_write, [(uri, f, size, payload) for f in files])
    results[f"write_{streams}_streams_MBps"] = size * streams / t / 1e6

    best1 = bestn = 0.0
    for _ in range(rounds):
        t = _parallel(_read, [(client, files[0], chunk)])
        best1 = max(best1, size / t / 1e6)
        clients = [_client(uri) for _ in files]  # separate clients: separate connections
        t = _parallel(_read, [(c, f, chunk) for c, f in zip(clients, files, strict=True)])
        bestn = max(bestn, size * streams / t / 1e6)
    results["read_1_stream_MBps"] = best1
    results[f"read_{streams}_streams_MBps"] = bestn
    client.delete("/bench", True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minidfs.bench", description=__doc__)
    parser.add_argument("--uri", help="benchmark an already running minidfs/HDFS instead")
    parser.add_argument("--size", type=parse_size, default=parse_size("256M"),
                        help="bytes per file (default 256M)")
    parser.add_argument("--streams", type=int, default=4, help="parallel streams (default 4)")
    parser.add_argument("--chunk", type=parse_size, default=parse_size("4M"),
                        help="read_range/write size (default 4M)")
    parser.add_argument("--block-size", type=parse_size, default=parse_size("128M"))
    parser.add_argument("--rounds", type=int, default=2, help="read rounds; best is reported")
    parser.add_argument("--in-process", action="store_true",
                        help="run minidfs in this process (shares the GIL with the client)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)

    for key in ("HADOOP_CONF_DIR", "HADOOP_HOME"):
        os.environ.pop(key, None)
    server: Any = None
    uri = args.uri
    if uri is None:
        data_dir = tempfile.mkdtemp(prefix="minidfs-bench-")
        if args.in_process:
            from minidfs import MiniDFS

            server = MiniDFS(data_dir, block_size=args.block_size, fsync=False).start()
        else:
            from minidfs.process import MiniDFSProcess

            server = MiniDFSProcess(None, block_size=args.block_size,
                                    extra_args=["--no-fsync"]).start()
        uri = server.uri
    try:
        results = run_bench(uri, size=args.size, streams=args.streams, chunk=args.chunk,
                            rounds=args.rounds)
    finally:
        if server is not None:
            server.stop()
    results["server"] = "external" if args.uri else ("in-process" if args.in_process
                                                      else "subprocess")
    results["cpus"] = os.cpu_count()
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:>24}: {value:.1f}" if isinstance(value, float) else
                  f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
