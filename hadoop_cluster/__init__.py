"""hadoop_cluster: Apache Hadoop's own HDFS (MiniDFSCluster in a JVM) as a second backend.

minidfs (ours, embedded, no JVM) stays the default backend of tests, demo
and benchmarks; this package runs the real NameNode and DataNodes beside it
so the same code can be checked against both::

    from hadoop_cluster import HadoopCluster
    with HadoopCluster(datanodes=3, ha=True) as hdfs:
        client = hdfs_client.connect(hdfs.uri, config=hdfs.client_config)
        hdfs.failover()
        hdfs.stop_datanode(0)

``hadoop_cluster.toolchain`` fetches the jars with Maven and compiles the
launcher (``java/HdfsCsiMiniCluster.java``); ``hadoop_cluster.cluster`` runs
and controls it.  ``python -m hadoop_cluster`` starts one by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hadoop_cluster.cluster import HadoopCluster, HadoopClusterError

__all__ = ["HadoopCluster", "HadoopClusterError"]


def __getattr__(name: str) -> object:
    # Lazy, so that ``python -m hadoop_cluster.toolchain`` (scripts/fetch-hadoop.sh)
    # runs its module once, not after a first import through the package.
    if name in __all__:
        from hadoop_cluster import cluster

        return getattr(cluster, name)
    raise AttributeError(name)
