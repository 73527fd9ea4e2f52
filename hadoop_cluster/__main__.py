"""``python -m hadoop_cluster``: start a Hadoop MiniDFSCluster by hand and keep it up.

For chasing a difference between Hadoop and minidfs: prints the URI and the
client configuration directory, then runs until Ctrl-C (or EOF on stdin).
Control commands typed on stdin are passed to the launcher (``status``,
``stop-datanode 0``, ``failover``, ...) and the answer is printed.
"""

from __future__ import annotations

import argparse
import json
import sys

from hadoop_cluster import HadoopCluster, HadoopClusterError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hadoop_cluster", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="kept after exit (default: a temporary directory)")
    ap.add_argument("--datanodes", type=int, default=1)
    ap.add_argument("--block-size", type=int, default=1 << 20)
    ap.add_argument("--replication", type=int)
    ap.add_argument("--ha", action="store_true", help="two NameNodes behind a nameservice")
    ap.add_argument("--ec-policy", action="append", default=[], help="enable, e.g. RS-3-2-1024k")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--log-level", default="WARN")
    a = ap.parse_args(argv)
    conf = dict(kv.split("=", 1) for kv in a.conf)
    cluster = HadoopCluster(a.data_dir, datanodes=a.datanodes, block_size=a.block_size,
                            replication=a.replication, ha=a.ha, ec_policies=a.ec_policy,
                            conf=conf, log_level=a.log_level)
    try:
        cluster.start()
    except HadoopClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"hadoop ready: {cluster.uri} in {cluster.startup_seconds:.1f}s\n"
              f"  HADOOP_CONF_DIR={cluster.hadoop_conf_dir}\n  log: {cluster.log_file}",
              flush=True)
        for line in sys.stdin:
            if line.strip():
                try:
                    print(json.dumps(cluster.command(*line.split()), indent=1), flush=True)
                except HadoopClusterError as exc:
                    print(f"error: {exc}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
