"""The serving daemon of a kept mount: ``python -m fuse_mount.server``, started by
the keeper (:mod:`fuse_mount.keeper`) on a ``/dev/fuse`` descriptor the keeper
holds, first for a fresh mount, then again after every crash, kill or upgrade.

It talks to the keeper over a socket (``--control-fd``), one line each way:

* it does all the slow start-up first (imports, HDFS connection, for a fresh
  mount also the core and the root check), then says ``READY`` (or
  ``ERR <message>``), so that the time readers wait during a takeover is only
  the part after ``GO``;
* after ``GO`` it serves: a fresh mount answers INIT; a takeover reads the
  negotiated connection and the journal of node ids and handles from the
  takeover directory, gives up the dead daemon's write handles
  (:meth:`Operations.adopt`), asks the kernel to resend unanswered requests,
  and serves on;
* SIGTERM = hand over: finish the requests in flight, take no new ones, exit 3
  (the keeper starts the successor); exit 0 only when the connection ended
  (unmounted).

It dies with the keeper (``PR_SET_PDEATHSIG``): without a holder the mount
cannot be taken over anyway, and a dead mount is what the node service knows
how to repair (remount, re-bind).
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

log = logging.getLogger("fuse_mount.server")

EXIT_UNMOUNTED = 0
EXIT_FAILED = 1
EXIT_HANDED_OVER = 3

CONNECTION_FILE = "connection.json"
JOURNAL_FILE = "nodes.journal"
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:   # the keeper died before prctl took effect
        os._exit(EXIT_FAILED)


def main(argv: list[str] | None = None) -> int:
    from fuse_mount import cli as mount_cli
    from hdfs_csi_common.logsetup import setup_logging

    parser = argparse.ArgumentParser(prog="fuse_mount.server")
    mount_cli.register(parser)
    parser.add_argument("--fuse-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--keeper-pid", type=int, required=True)
    parser.add_argument("--takeover", action="store_true")
    args = parser.parse_args(argv)
    _die_with_parent(args.keeper_pid)
    opts = mount_cli.options_from_args(args)
    setup_logging(opts.log_level, component="hdfs-csi-mount")
    control = socket.socket(fileno=args.control_fd)
    try:
        return Server(args.source, args.mountpoint, opts, args.fuse_fd, control,
                      takeover=args.takeover).run()
    finally:
        control.close()


class Server:
    def __init__(self, source: str, mountpoint: str, opts: Any, fuse_fd: int,
                 control: socket.socket, *, takeover: bool):
        self.source = source
        self.mountpoint = mountpoint
        self.opts = opts
        self.fd = fuse_fd
        self.control = control
        self.takeover = takeover
        assert opts.takeover_dir is not None
        self.dir = opts.takeover_dir
        self.session: Any = None

    def _say(self, line: str) -> None:
        try:
            self.control.sendall(line.encode("utf-8", "replace") + b"\n")
        except OSError:
            pass

    def _wait_go(self) -> bool:
        buf = b""
        while b"\n" not in buf:
            chunk = self.control.recv(64)
            if not chunk:
                return False
            buf += chunk
        return buf.split(b"\n", 1)[0] == b"GO"

    def run(self) -> int:
        from fuse_mount.metrics import MountMetrics
        from fuse_mount.runner import MountError, build_core, connect, tune_malloc
        from hdfs_client.uri import parse_hdfs_uri

        tune_malloc()
        loc = parse_hdfs_uri(self.source)
        metrics = MountMetrics()
        core = client = None
        try:
            client = connect(loc, self.opts)
            if not self.takeover:   # a successor opens the disk cache only once it serves
                core = build_core(client, loc, self.opts, metrics)
        except MountError as exc:
            self._say(f"ERR {exc}")
            if client is not None:
                client.close()
            return EXIT_FAILED
        self._say("READY")
        if not self._wait_go():
            log.info("the keeper went away before the start signal")
            return EXIT_FAILED
        try:
            if core is None:
                try:
                    core = build_core(client, loc, self.opts, metrics)
                except MountError as exc:
                    log.error("cannot take over the mount: %s", exc)
                    return EXIT_FAILED
            return self._serve(core, metrics)
        finally:
            if core is not None:
                core.close()
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass

    def _serve(self, core: Any, metrics: Any) -> int:
        from fuse_mount.lowlevel import Operations
        from fuse_mount.node_table import NodeTable
        from fuse_mount.session import Connection, Session

        conn_file = os.path.join(self.dir, CONNECTION_FILE)
        connection = Connection.load(conn_file) if self.takeover else None
        nodes = NodeTable(os.path.join(self.dir, JOURNAL_FILE))
        ops = Operations(core, nodes)
        if self.takeover:
            ops.adopt()
        from fuse_mount import kernel_abi

        def connected(c: Connection) -> None:
            core.direct_io.connection_ready(bool(c.flags & kernel_abi.DIRECT_IO_ALLOW_MMAP))

        def on_init(c: Connection) -> None:
            c.save(conn_file)
            connected(c)

        session = self.session = Session(
            self.fd, ops.dispatch, threads=self.opts.fuse_threads, connection=connection,
            on_init=on_init)
        if connection is not None:
            connected(connection)
        handed_over = threading.Event()

        def hand_over(*_: Any) -> None:
            handed_over.set()
            threading.Thread(target=session.drain, name="drain", daemon=True).start()

        signal.signal(signal.SIGTERM, hand_over)
        signal.signal(signal.SIGINT, hand_over)
        if self.opts.metrics_port is not None:
            metrics.serve(self.opts.metrics_port)
        session.start()
        if self.takeover:
            session.resend()
            log.info("took over the FUSE connection of %s (%d node ids, %d open handles)",
                     self.mountpoint, len(nodes), len(nodes.handles))
        warmer = None
        if self.opts.warmup and not self.takeover:
            from fuse_mount.warmer import Warmer

            warmer = Warmer(core, self.opts.warmup, max_bytes=self.opts.cache_size)
            warmer.start()
        from fuse_mount import cluster_cache

        pinned = cluster_cache.start_for(core, self.opts, metrics, takeover_dir=self.dir)
        try:
            while not session.ended:
                session.wait_ended(1.0)   # wakes for signal handlers in between
            session.wait()
        finally:
            if warmer is not None:
                warmer.stop()
            if pinned is not None:   # a handover leaves them to the next daemon
                from fuse_mount.keeper import UNMOUNTING_FILE

                pinned.stop(remove=not handed_over.is_set() or os.path.exists(
                    os.path.join(self.dir, UNMOUNTING_FILE)))
            nodes.close()
        if handed_over.is_set():
            log.info("handed over: %s stays mounted for the next daemon", self.mountpoint)
            return EXIT_HANDED_OVER
        log.info("%s unmounted", self.mountpoint)
        return EXIT_UNMOUNTED


if __name__ == "__main__":
    sys.exit(main())
