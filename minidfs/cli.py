"""``hdfs-csi minidfs``: run the embedded HDFS in the foreground.

Prints ``minidfs ready: hdfs://HOST:PORT (datanodes: ...)`` on stdout once
the NameNode accepts connections; SIGTERM or SIGINT stop it cleanly (final
checkpoint written) with exit code 0.

``--control-stdin`` reads one command per line from stdin and answers
``ok ...`` or ``error: ...`` on stdout; :class:`minidfs.process.MiniDFSProcess`
uses it to drive faults in a child process.  Commands::

    stop_datanode I | start_datanode I | rpc_latency DUR | packet_latency DUR
    stream_bandwidth SIZE|0 | fail_next METHOD [COUNT [JAVA_CLASS]]
    stall_reads I [SECONDS] | unstall [I] | clear_faults | checkpoint | status
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from hdfs_csi_common.logsetup import setup_logging
from hdfs_csi_common.units import parse_duration, parse_size

log = logging.getLogger("minidfs.cli")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="data directory (namespace + block files); default: a temporary "
                             "directory removed on exit")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind and advertise")
    parser.add_argument("--port", type=int, default=8020, help="NameNode RPC port (0 = any)")
    parser.add_argument("--datanodes", type=int, default=1, help="number of DataNodes")
    parser.add_argument("--block-size", default="128M", type=parse_size,
                        help="default block size (e.g. 1M, 128M)")
    parser.add_argument("--replication", type=int, default=None,
                        help="default replication (default: min(3, datanodes))")
    parser.add_argument("--superuser", default=None,
                        help="HDFS superuser (default: the user running minidfs)")
    parser.add_argument("--supergroup", default="supergroup",
                        help="HDFS superuser group (dfs.permissions.superusergroup): its "
                             "members are superusers")
    parser.add_argument("--listing-limit", type=int, default=1000,
                        help="entries per getListing page")
    parser.add_argument("--trash-interval", type=int, default=0,
                        help="fs.trash.interval in minutes reported to clients")
    parser.add_argument("--capacity", type=parse_size, default=None,
                        help="capacity reported by getFsStats (default: the disk's)")
    parser.add_argument("--no-fsync", dest="fsync", action="store_false",
                        help="skip fsync of edits and finalized blocks (faster, not durable)")
    parser.add_argument("--rpc-latency", type=parse_duration, default=0.0,
                        help="latency added to every NameNode RPC (e.g. 5ms)")
    parser.add_argument("--packet-latency", type=parse_duration, default=0.0,
                        help="latency added to every DataNode data packet (e.g. 2ms)")
    parser.add_argument("--stream-bandwidth", type=parse_size, default=None,
                        help="bandwidth cap per DataNode stream in bytes/s (e.g. 50M)")
    parser.add_argument("--fail-next", action="append", default=[], metavar="METHOD[:N[:CLASS]]",
                        help="fail the next N (default 1) calls of an RPC (e.g. getFileInfo) or "
                             "DataNode op (READ_BLOCK, WRITE_BLOCK) with a Java exception class "
                             "(default java.io.IOException); repeatable")
    parser.add_argument("--stall-reads", action="append", default=[], metavar="DN[:SECONDS]",
                        help="stall reads on DataNode DN for SECONDS (default: until told "
                             "otherwise on the control channel); repeatable")
    parser.add_argument("--control-stdin", action="store_true",
                        help="accept control commands on stdin (used by MiniDFSProcess)")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING, ...")
    parser.set_defaults(func=run)


def build(args: argparse.Namespace) -> Any:
    from minidfs.cluster import MiniDFS

    return MiniDFS(
        args.data_dir, host=args.host, port=args.port, datanodes=args.datanodes,
        block_size=args.block_size, replication=args.replication, superuser=args.superuser,
        supergroup=args.supergroup, listing_limit=args.listing_limit,
        trash_interval=args.trash_interval, capacity=args.capacity, fsync=args.fsync,
        rpc_latency=args.rpc_latency, packet_latency=args.packet_latency,
        stream_bandwidth=args.stream_bandwidth or None,
    )


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level or "WARNING", component="minidfs")
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        dfs = build(args)
        for spec in args.fail_next:
            method, _, rest = spec.partition(":")
            count, _, java_class = rest.partition(":")
            dfs.faults.fail_next(method, int(count or 1), java_class or "java.io.IOException")
        for spec in args.stall_reads:
            index, _, seconds = spec.partition(":")
            dfs.faults.stall_reads(int(index), parse_duration(seconds) if seconds else None)
        dfs.start()
    except (OSError, ValueError) as exc:
        print(f"minidfs: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"minidfs ready: {dfs.uri} (datanodes: {', '.join(dfs.datanode_addresses)})",
              flush=True)
        if args.control_stdin:
            threading.Thread(target=_control_loop, args=(dfs, stop), daemon=True,
                             name="minidfs-control").start()
        while not stop.wait(0.5):
            pass
    finally:
        dfs.stop()
    return 0


def _control_loop(dfs: Any, stop: threading.Event) -> None:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            reply = control(dfs, words)
            print(f"ok {reply}".rstrip(), flush=True)
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            print(f"error: {exc}", flush=True)
    stop.set()  # stdin closed: the controlling process is gone


def control(dfs: Any, words: list[str]) -> str:
    """Execute one control command against a running MiniDFS."""
    cmd, rest = words[0], words[1:]
    faults = dfs.faults
    if cmd == "stop_datanode":
        dfs.stop_datanode(int(rest[0]))
    elif cmd == "start_datanode":
        dfs.start_datanode(int(rest[0]))
    elif cmd == "rpc_latency":
        faults.rpc_latency = parse_duration(rest[0])
    elif cmd == "packet_latency":
        faults.packet_latency = parse_duration(rest[0])
    elif cmd == "stream_bandwidth":
        faults.stream_bandwidth = parse_size(rest[0]) or None
    elif cmd == "fail_next":
        count = int(rest[1]) if len(rest) > 1 else 1
        faults.fail_next(rest[0], count, *(rest[2:3] or []))
    elif cmd == "stall_reads":
        faults.stall_reads(int(rest[0]), float(rest[1]) if len(rest) > 1 else None)
    elif cmd == "unstall":
        faults.unstall(int(rest[0]) if rest else None)
    elif cmd == "clear_faults":
        faults.clear()
    elif cmd == "checkpoint":
        dfs.checkpoint()
    elif cmd == "status":
        return f"{dfs.uri} datanodes={','.join(dfs.datanode_addresses)}"
    else:
        raise ValueError(f"unknown command {cmd!r}")
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minidfs", description=__doc__.splitlines()[0])
    register(parser)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
