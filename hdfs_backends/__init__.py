"""Picking the HDFS that tests, benchmarks and the demo run against, by name.

* ``minidfs`` (the default): our embedded HDFS, no JVM (:mod:`minidfs`);
* ``hadoop``: Apache Hadoop's own NameNode and DataNodes (MiniDFSCluster in
  a JVM, :mod:`hadoop_cluster`), for checking that what passes on minidfs
  passes on the real thing.

Both come back with one shape: ``start()``/``stop()``/context manager,
``uri``, ``namenode_uris``, ``datanode_addresses``, ``num_datanodes``,
``block_size``, ``superuser``, ``client_config`` (Hadoop keys a client needs:
the HA nameservice), ``hadoop_conf_dir`` (the same as site files, for
processes that read ``HADOOP_CONF_DIR``), ``stop_datanode(i)``,
``start_datanode(i)``, and ``backend`` (the name).  Features only one backend
has raise :class:`BackendUnsupported` on the other (``failover`` and
``set_ec_policy`` need ``hadoop``); everything else minidfs offers (``faults``,
``ns``, ...) still reaches the :class:`minidfs.MiniDFS` underneath.
"""

from __future__ import annotations

import os
from typing import Any

BACKENDS = ("minidfs", "hadoop")
DEFAULT_BACKEND = "minidfs"


class BackendUnsupported(NotImplementedError):
    """The chosen backend has no such feature (e.g. HA failover on minidfs)."""


def _check(name: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"unknown HDFS backend {name!r} (choose from {', '.join(BACKENDS)})")


def backend_unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot run on this machine (a skip reason), or None."""
    _check(name)
    if name == "minidfs":
        return None
    from hadoop_cluster import toolchain

    return toolchain.skip_reason()


class MiniDFSBackend:
    """minidfs behind the common shape; attributes it lacks come from the cluster itself.

    ``process=True`` runs it as a child process (:class:`minidfs.process.MiniDFSProcess`,
    outside this process's GIL, as benchmarks and the demo need), else in-process.
    """

    backend = "minidfs"

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *, datanodes: int = 1,
                 block_size: int = 1 << 20, replication: int | None = None,
                 superuser: str | None = None, process: bool = False, **kw: Any):
        import getpass

        self.process = process
        self.superuser = superuser or getpass.getuser()
        self.block_size = block_size
        self.num_datanodes = datanodes
        if process:
            from minidfs.process import MiniDFSProcess

            if superuser:
                kw["superuser"] = superuser
            self.impl: Any = MiniDFSProcess(data_dir, datanodes=datanodes, block_size=block_size,
                                            replication=replication, **kw)
        else:
            from minidfs import MiniDFS

            self.impl = MiniDFS(data_dir, datanodes=datanodes, block_size=block_size,
                                replication=replication, superuser=superuser, **kw)
        self.data_dir = self.impl.data_dir
        self.hadoop_conf_dir: str | None = None

    def start(self) -> MiniDFSBackend:
        self.impl.start()
        from hadoop_cluster import siteconf

        self.hadoop_conf_dir = siteconf.write_conf_dir(
            os.path.join(self.impl.data_dir, "conf"), self.client_config)
        return self

    def stop(self) -> None:
        self.impl.stop()

    def __enter__(self) -> MiniDFSBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def uri(self) -> str:
        return str(self.impl.uri)

    @property
    def namenode_uris(self) -> list[str]:
        return [self.uri]

    @property
    def datanode_addresses(self) -> list[str]:
        if self.process:
            raise BackendUnsupported("minidfs in a child process does not report DataNode "
                                     "addresses")
        return list(self.impl.datanode_addresses)

    @property
    def client_config(self) -> dict[str, str]:
        return {"fs.defaultFS": self.uri}

    def stop_datanode(self, index: int, *, dead: bool = False) -> None:
        # minidfs sends no heartbeats: a stopped DataNode is out of every new
        # block location at once, i.e. always "dead" in Hadoop's terms.
        self.impl.stop_datanode(index)

    def start_datanode(self, index: int) -> None:
        self.impl.start_datanode(index)

    def failover(self) -> int:
        raise BackendUnsupported("minidfs has a single NameNode (no HA): use backend 'hadoop'")

    def set_ec_policy(self, path: str, policy: str) -> None:
        raise BackendUnsupported("minidfs has no erasure coding: use backend 'hadoop'")

    def __getattr__(self, name: str) -> Any:
        if name == "impl":  # not set yet (failed __init__): no recursion
            raise AttributeError(name)
        return getattr(self.impl, name)


def make_backend(name: str, data_dir: str | os.PathLike[str] | None = None, *,
                 datanodes: int = 1, block_size: int = 1 << 20, **kw: Any) -> Any:
    """The backend, not started yet (so a caller can register its ``stop`` first)."""
    _check(name)
    if name == "minidfs":
        return MiniDFSBackend(data_dir, datanodes=datanodes, block_size=block_size, **kw)
    from hadoop_cluster import HadoopCluster

    kw.pop("process", None)  # Hadoop always runs in its own JVM
    return HadoopCluster(data_dir, datanodes=datanodes, block_size=block_size, **kw)


def start_backend(name: str, data_dir: str | os.PathLike[str] | None = None, *,
                  datanodes: int = 1, block_size: int = 1 << 20, **kw: Any) -> Any:
    """Start backend ``name`` (``"minidfs"`` or ``"hadoop"``) and return it.

    Keywords the other backend has no use for are errors (``ha=True`` on
    minidfs raises ``TypeError``), so a test cannot silently lose a feature.
    """
    backend = make_backend(name, data_dir, datanodes=datanodes, block_size=block_size, **kw)
    try:
        return backend.start()
    except BaseException:
        backend.stop()
        raise


def connect(backend: Any, **kw: Any) -> Any:
    """An :class:`hdfs_client.HdfsClient` for a started backend (HA config included)."""
    import hdfs_client

    config = {**backend.client_config, **kw.pop("config", {})}
    config.pop("fs.defaultFS", None)  # the URI is explicit; same client cache key as connect(uri)
    return hdfs_client.connect(backend.uri, config=config, **kw)
