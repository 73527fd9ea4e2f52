"""MiniDFS: one NameNode and N DataNodes in this process, on one data directory.

Start-up order matters and mirrors a real cluster restart:

1. load the namespace (image + edit log replay);
2. start the DataNodes: each scans its disk and sends a block report, which
   deletes orphans and truncates replicas longer than the committed length;
3. close files left under construction by the previous run, keeping only
   the bytes the journal recorded as durable;
4. only then open the NameNode port, so no client sees a half-recovered
   namespace.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from typing import Any

from minidfs.blocks import DatanodeDescriptor
from minidfs.datanode import DataNode
from minidfs.editlog import Journal
from minidfs.faults import Faults
from minidfs.ipc import RpcServer
from minidfs.namenode import NameNode
from minidfs.namesystem import Namesystem, NamesystemConfig
from minidfs.storage import Storage

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 128 * 1024 * 1024


def _load_or_create(path: str, make: Any) -> dict[str, Any]:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    data = make()
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)
    return data


class MiniDFS:
    """An HDFS for tests, demos and benchmarks.

    >>> with MiniDFS("/tmp/dfs", datanodes=2, block_size=1 << 20) as dfs:
    ...     client = hdfs_client.connect(dfs.uri)

    ``data_dir=None`` uses a temporary directory that is removed on stop.
    Faults can be changed at any time through :attr:`faults`.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, datanodes: int = 1,
                 block_size: int = DEFAULT_BLOCK_SIZE, replication: int | None = None,
                 superuser: str | None = None, supergroup: str = "supergroup",
                 groups: dict[str, list[str]] | None = None, listing_limit: int = 1000,
                 fsync: bool = True, lease_soft_limit: float = 60.0,
                 lease_hard_limit: float = 20 * 60.0, trash_interval: int = 0,
                 capacity: int | None = None, faults: Faults | None = None,
                 rpc_latency: float = 0.0, packet_latency: float = 0.0,
                 stream_bandwidth: float | None = None, handlers: int = 16,
                 monitor_interval: float = 1.0, heartbeat_interval: float = 3.0):
        if datanodes < 1:
            raise ValueError("MiniDFS needs at least one DataNode")
        if block_size <= 0 or block_size % 512:
            raise ValueError("block_size must be a positive multiple of 512")
        self._own_dir = data_dir is None
        self.data_dir = str(data_dir) if data_dir is not None else \
            tempfile.mkdtemp(prefix="minidfs-")
        self.host = host
        self.port = port
        self.num_datanodes = datanodes
        self.fsync = fsync
        self.handlers = handlers
        self.monitor_interval = monitor_interval
        self.heartbeat_interval = heartbeat_interval
        self.config = NamesystemConfig(
            block_size=block_size,
            replication=replication if replication is not None else min(3, datanodes),
            superuser=superuser or getpass.getuser(),
            supergroup=supergroup,
            groups=dict(groups or {}),
            listing_limit=listing_limit,
            lease_soft_limit=lease_soft_limit,
            lease_hard_limit=lease_hard_limit,
            trash_interval=trash_interval,
            capacity=capacity,
        )
        self.faults = faults or Faults(rpc_latency=rpc_latency, packet_latency=packet_latency,
                                       stream_bandwidth=stream_bandwidth)
        self.namesystem: Namesystem | None = None
        self.datanodes: list[DataNode] = []
        self._rpc: RpcServer | None = None
        self._monitor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = False

    # -- properties ----------------------------------------------------------------
    @property
    def uri(self) -> str:
        return f"hdfs://{self.host}:{self.port}"

    @property
    def superuser(self) -> str:
        """The HDFS superuser (the user the NameNode runs as, as in HDFS)."""
        return self.config.superuser

    @property
    def block_size(self) -> int:
        return self.config.block_size

    @property
    def datanode_addresses(self) -> list[str]:
        return [f"{dn.host}:{dn.port}" for dn in self.datanodes]

    @property
    def ns(self) -> Namesystem:
        assert self.namesystem is not None, "MiniDFS is not started"
        return self.namesystem

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> MiniDFS:
        if self._started:
            return self
        os.makedirs(self.data_dir, exist_ok=True)
        name_dir = os.path.join(self.data_dir, "namenode")
        os.makedirs(name_dir, exist_ok=True)
        version = _load_or_create(os.path.join(name_dir, "VERSION.json"), lambda: {
            "cluster_id": f"CID-{uuid.uuid4()}",
            "block_pool_id": f"BP-{uuid.uuid4().int % 10**9}-127.0.0.1-"
                             f"{int(os.times().elapsed * 1000)}",
        })
        journal = Journal(name_dir, fsync=self.fsync)
        ns = Namesystem(self.config, journal, version["block_pool_id"])
        replayed = ns.load()
        log.info("namespace loaded from %s (%d edits replayed)", name_dir, replayed)
        self.namesystem = ns
        self._stopping.clear()
        old_ports = {dn.index: (dn.port, dn.ipc_port) for dn in self.datanodes}
        self.datanodes = []
        for i in range(self.num_datanodes):
            dn_dir = os.path.join(self.data_dir, f"datanode{i}")
            os.makedirs(dn_dir, exist_ok=True)
            ident = _load_or_create(os.path.join(dn_dir, "VERSION.json"), lambda: {
                "datanode_uuid": str(uuid.uuid4()),
                "storage_id": f"DS-{uuid.uuid4()}",
            })
            desc = DatanodeDescriptor(i, ident["datanode_uuid"], ident["storage_id"], self.host)
            ns.bm.datanodes.append(desc)
            xfer_port, ipc_port = old_ports.get(i, (0, 0))
            dn = DataNode(desc, Storage(dn_dir, fsync=self.fsync), ns, self.faults, self._peer,
                          host=self.host, port=xfer_port, ipc_port=ipc_port,
                          heartbeat_interval=self.heartbeat_interval)
            self.datanodes.append(dn)
        for dn in self.datanodes:
            dn.start()
        recovered = ns.recover_all_under_construction()
        if recovered:
            log.info("closed %d file(s) left under construction", recovered)
        ns.sync()
        namenode = NameNode(ns)
        self._rpc = RpcServer(namenode.dispatch, host=self.host, port=self.port,
                              faults=self.faults, workers=self.handlers)
        self._rpc.start()
        self.port = self._rpc.port
        self._monitor = threading.Thread(target=self._monitor_loop, daemon=True,
                                         name="minidfs-monitor")
        self._monitor.start()
        self._started = True
        log.info("minidfs started: %s, datanodes %s", self.uri, self.datanode_addresses)
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        if self._rpc is not None:
            self._rpc.stop()
        for dn in self.datanodes:
            dn.stop()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        ns = self.namesystem
        if ns is not None and ns.journal is not None:
            ns.checkpoint()
            ns.journal.close()
        log.info("minidfs stopped")
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self) -> MiniDFS:
        """Stop and start again on the same data directory and ports."""
        own = self._own_dir
        self._own_dir = False
        try:
            self.stop()
        finally:
            self._own_dir = own
        return self.start()

    def __enter__(self) -> MiniDFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- DataNodes ----------------------------------------------------------------
    def stop_datanode(self, index: int) -> None:
        self.datanodes[index].stop()

    def start_datanode(self, index: int) -> None:
        """Restart a stopped DataNode on the same port with the same storage."""
        old = self.datanodes[index]
        if old.running:
            return
        dn = DataNode(old.desc, old.storage, self.ns, self.faults, self._peer,
                      host=old.host, port=old.port, ipc_port=old.ipc_port,
                      heartbeat_interval=self.heartbeat_interval)
        self.datanodes[index] = dn
        dn.start()

    def trigger_heartbeats(self) -> int:
        """Every running DataNode heartbeats now (MiniDFSCluster.triggerHeartbeats):
        replicas of deleted files go at once instead of within ``heartbeat_interval``.
        Returns the number of replicas deleted."""
        return sum(dn.heartbeat() for dn in self.datanodes if dn.running)

    def _peer(self, datanode_uuid: str, xfer_port: int) -> DataNode | None:
        for dn in self.datanodes:
            if dn.desc.uuid == datanode_uuid or (not datanode_uuid and dn.port == xfer_port):
                return dn if dn.running else None
        return None

    # -- background work ----------------------------------------------------------
    def _monitor_loop(self) -> None:
        while not self._stopping.wait(self.monitor_interval):
            try:
                self.ns.check_leases()
                self.replicate_once()
            except Exception:
                log.exception("minidfs monitor failed")

    def replicate_once(self) -> int:
        """Copy under-replicated blocks to live DataNodes; returns copies made."""
        copies = 0
        for block_id, length, src, dst in self.ns.replication_work():
            source, target = self.datanodes[src], self.datanodes[dst]
            try:
                n = source.copy_replica_to(block_id, target)
            except OSError as exc:
                log.warning("re-replication of block %d failed: %s", block_id, exc)
                continue
            if n is None:
                continue
            if n != length or not self.ns.replica_finalized(dst, block_id, n):
                target.delete_replica(block_id)
                continue
            copies += 1
        return copies

    def checkpoint(self) -> None:
        self.ns.checkpoint()

    # -- subprocess -----------------------------------------------------------------
    @classmethod
    def spawn(cls, data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        """Run minidfs in a child process (outside this process's GIL); returns a started
        :class:`minidfs.process.MiniDFSProcess`."""
        from minidfs.process import MiniDFSProcess

        return MiniDFSProcess(data_dir, **kwargs).start()
