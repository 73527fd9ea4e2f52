"""The gRPC server: services for the configured mode on a unix socket.

``--mode controller`` serves Identity + Controller, ``node`` Identity + Node,
``all`` all three on one socket (what csi-sanity and the demo use).  A
service that is not registered answers UNIMPLEMENTED from gRPC itself.

SIGTERM and SIGINT stop accepting calls, give in-flight ones
``--grace-period`` seconds, and exit.  FUSE mounts are not touched: their
daemons run on their own and a restarted node service adopts them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from csi_driver.clients import ClientPool
from csi_driver.config import Config
from csi_driver.controller import ControllerServicer
from csi_driver.identity import IdentityServicer
from csi_driver.locks import InFlight
from csi_driver.logging_interceptor import LoggingInterceptor
from csi_driver.mounter import Mounter, SystemMounter
from csi_driver.node import NodeServicer
from csi_driver.node_manager import NodeManager
from csi_driver.provisioner import Provisioner
from hdfs_csi_pb import csi_pb2_grpc

log = logging.getLogger(__name__)


@dataclass
class Driver:
    config: Config
    server: Any
    pool: ClientPool
    ready: threading.Event
    node: NodeManager | None = None

    def stop(self, grace: float | None = None) -> None:
        self.server.stop(self.config.grace_period if grace is None else grace).wait()
        self.pool.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.config.socket_path)


def _prepare_socket(path: str) -> None:
    parent = os.path.dirname(path) or "/"
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"hdfs-csi driver: cannot create {parent} for the socket "
                         f"--endpoint unix://{path}: {exc.strerror}") from None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SystemExit(f"{path} exists and is not a socket; refusing to replace it")
    os.unlink(path)  # left over from a previous run


def _make_state_dir(path: str) -> None:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"hdfs-csi driver: cannot create --state-dir {path}: "
                         f"{exc.strerror}") from None


def build(config: Config, *, mounter: Mounter | None = None,
          pool: ClientPool | None = None) -> Driver:
    """Create (but do not start) the server for ``config``."""
    pool = pool or ClientPool(config.hdfs_user)
    ready = threading.Event()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="csi"),
        interceptors=[LoggingInterceptor()],
        options=[("grpc.so_reuseport", 0)],
    )
    inflight = InFlight()
    if not config.allowed_clusters:
        log.warning("neither --hdfs-uri nor --allowed-hdfs-uri is set: every volume will be "
                    "refused (the driver connects only to clusters it was given)")
    csi_pb2_grpc.add_IdentityServicer_to_server(IdentityServicer(config, ready), server)
    driver = Driver(config, server, pool, ready)
    _make_state_dir(config.state_dir)
    if config.serves_controller:
        csi_pb2_grpc.add_ControllerServicer_to_server(
            ControllerServicer(config, Provisioner(config, pool, inflight)), server)
    if config.serves_node:
        mounter = mounter or SystemMounter(config.mount_command, config.mount_timeout,
                                           config.kubelet_dirs)
        driver.node = NodeManager(config, pool, mounter, inflight)
        csi_pb2_grpc.add_NodeServicer_to_server(NodeServicer(config, driver.node), server)
    _prepare_socket(config.socket_path)
    try:
        bound = server.add_insecure_port(f"unix://{config.socket_path}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise SystemExit(f"hdfs-csi driver: cannot listen on unix://{config.socket_path} "
                         "(is the directory writable, and the path short enough for a unix "
                         "socket, 107 bytes?)")
    return driver


def start(driver: Driver) -> None:
    driver.server.start()
    if driver.node is not None:
        adopted = driver.node.adopt()
        if adopted:
            log.info("adopted %d staged volume(s) from %s", len(adopted), driver.config.state_dir)
    driver.ready.set()
    log.info("%s serving %s on %s (node id %r)", driver.config.driver_name, driver.config.mode,
             driver.config.endpoint, driver.config.node_id)


def serve(config: Config) -> int:
    driver = build(config)
    stop_requested = threading.Event()

    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        # Only flag it: logging from a signal handler can interleave with a
        # log line the interrupted thread was writing.
        received.append(signum)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start(driver)
    while not stop_requested.wait(3600):
        pass
    log.info("received %s: stopping (grace %.0f s)", signal.Signals(received[0]).name,
             config.grace_period)
    driver.stop()
    log.info("stopped")
    return 0
