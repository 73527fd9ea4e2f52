"""Helpers of the Kerberos tests, importable as ``krb_kit`` (fixtures: ``conftest.py``).

A real MIT KDC, and a secure Apache Hadoop HDFS on it.

* ``kdc`` (module): :class:`hadoop_cluster.kdc.MitKdc` in a temporary realm.
* ``secure_hdfs`` (module): the KDC, a Kerberos-secured MiniDFSCluster
  (:mod:`hadoop_cluster.secure`), a ``HADOOP_CONF_DIR`` for clients, a
  superuser client (``hdfs/localhost``), and the test user ``alice`` whose
  tickets live :data:`TICKET_LIFE` seconds.  While it runs, this process has
  ``KRB5_CONFIG`` pointing at the realm (hdfs-native reads it when it logs in).

The KDC's tools come from ``scripts/fetch-kerberos.sh`` and Hadoop from
``scripts/fetch-hadoop.sh``; without them the tests skip, except in CI
(``CI`` set), which runs these tiers on purpose and fails instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "csi_driver"))

#: seconds a ticket of ``alice`` lives (the KDC's limit for her principal)
TICKET_LIFE = 15
REALM = "HDFS-CSI.TEST"


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Kerberos tier unavailable in CI: {reason}")
    pytest.skip(reason)


def run_kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from hadoop_cluster.kdc import MitKdc, unavailable_reason

    reason = unavailable_reason()
    if reason:
        unavailable(reason)
    k = MitKdc(tmp_path_factory.mktemp("realm"), realm=REALM).start()
    try:
        yield k
    finally:
        k.stop()


@dataclass
class SecureHdfs:
    kdc: Any
    setup: Any                 #: hadoop_cluster.secure.SecureSetup
    cluster: Any               #: hadoop_cluster.HadoopCluster (secure)
    conf_dir: str              #: HADOOP_CONF_DIR for clients (Kerberos on)
    superuser: Any             #: hdfs_client HdfsClient as hdfs/localhost
    alice: str                 #: alice@REALM
    alice_keytab: str
    startup_seconds: float

    @property
    def uri(self) -> str:
        return str(self.cluster.uri)

    def client_config(self) -> dict[str, str]:
        return {**self.cluster.client_config, **self.setup.client_conf}


def run_secure_hdfs(kdc: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureHdfs]:
    from hdfs_backends import backend_unavailable

    reason = backend_unavailable("hadoop")
    if reason:
        unavailable(reason)
    from hadoop_cluster import HadoopCluster, secure, siteconf
    from hdfs_client.native import NativeHdfsClient

    root = tmp_path_factory.mktemp("secure-hdfs")
    setup = secure.make_setup(kdc)
    alice_keytab = kdc.add_principal("alice", root / "alice.keytab", max_life=TICKET_LIFE)
    mp = pytest.MonkeyPatch()
    mp.setenv("KRB5_CONFIG", str(kdc.krb5_conf))
    mp.delenv("KRB5CCNAME", raising=False)
    cluster = HadoopCluster(root / "hdfs", datanodes=1, block_size=1 << 20,
                            conf=setup.server_conf, jvm_options=setup.jvm_options(),
                            env=kdc.client_env())
    try:
        cluster.start()
        conf_dir = siteconf.write_conf_dir(str(root / "client-conf"),
                                           {**cluster.client_config, **setup.client_conf})
        superuser = NativeHdfsClient(cluster.uri, config=setup.client_conf,
                                     kerberos_principal=setup.service_principal,
                                     kerberos_keytab=setup.keytab)
        yield SecureHdfs(kdc, setup, cluster, conf_dir, superuser, kdc.principal("alice"),
                         alice_keytab, cluster.startup_seconds)
    finally:
        cluster.stop()
        mp.undo()
