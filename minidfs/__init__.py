"""minidfs: an HDFS NameNode + DataNodes in Python, for tests, demos and benchmarks.

It speaks the real wire protocols (Hadoop RPC v9 ClientNamenodeProtocol and
DataTransferProtocol v28), so ``hdfs-native`` and Hadoop's Java client talk
to it like to a real cluster::

    from minidfs import MiniDFS
    with MiniDFS(data_dir, datanodes=2, block_size=1 << 20) as dfs:
        client = hdfs_client.connect(dfs.uri)
        dfs.faults.packet_latency = 0.002
        dfs.stop_datanode(0)

See ``minidfs.cluster`` for the start-up sequence, ``tests/dfs_kit.py`` for
the pytest fixtures and ``minidfs.process`` to run it as a subprocess.
"""

from minidfs.cluster import MiniDFS
from minidfs.faults import Faults

__all__ = ["Faults", "MiniDFS", "MiniDFSProcess"]


def __getattr__(name: str) -> object:
    if name == "MiniDFSProcess":
        from minidfs.process import MiniDFSProcess

        return MiniDFSProcess
    raise AttributeError(name)
