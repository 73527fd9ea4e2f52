"""Secure-mode (Kerberos) configuration for a :class:`~hadoop_cluster.HadoopCluster`.

What Hadoop's own secure MiniDFSCluster tests set (``SaslDataTransferTestCase``
``createSecureConfig``, ``TestSecureNNWithQJM``), minus what a loopback test
cluster cannot have:

* Kerberos authentication and service-level authorization on;
* one service principal ``hdfs/localhost`` for the NameNode and the
  DataNodes, and ``HTTP/localhost`` for the web endpoints' SPNEGO, in one
  keytab (as the Hadoop tests do); the host part is spelled out, not
  ``_HOST``: every server binds 127.0.0.1, and clients (hdfs-native, our
  admin client) ask for ``hdfs/<serverId>`` with the serverId the NameNode
  announces, i.e. the host part of its principal;
* block access tokens (a secure DataNode refuses to start without them);
* DataTransferProtocol with SASL (``dfs.data.transfer.protection =
  authentication``: DIGEST-MD5 over the block token, which hdfs-native
  speaks) instead of privileged ports, which a test cannot bind;
  ``ignore.secure.ports.for.testing`` waives the HTTPS-only rule that
  would otherwise come with SASL (no keystores for a throwaway cluster).

Kerberos is checked when a connection is opened, never again on a live
one: a long-lived client (a FUSE mount) only has to log in again once its
ticket has expired *and* it opens a new connection (NameNode restart or
failover, a network cut).  The ticket-lifetime test forces the latter with
``ss -K``; Hadoop's own idle-connection reaping (``ipc.client.idlethreshold``
and friends: with a threshold of 1 and 3 s idle time the NameNode still kept
hdfs-native's connections open for 100 s) did not help.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hadoop_cluster.kdc import MitKdc

SERVICE = "hdfs/localhost"
SPNEGO = "HTTP/localhost"
#: what hadoop.rpc.protection / dfs.data.transfer.protection are set to: authentication
#: only, the one QOP our admin client (hdfs_client.rpc_sasl) speaks
PROTECTION = "authentication"


@dataclass
class SecureSetup:
    """A realm's service identity for one cluster, and the configuration that goes with it."""

    kdc: MitKdc
    keytab: str                       #: hdfs/localhost + HTTP/localhost, 0600
    server_conf: dict[str, str] = field(default_factory=dict)
    client_conf: dict[str, str] = field(default_factory=dict)

    @property
    def service_principal(self) -> str:
        return self.kdc.principal(SERVICE)

    def jvm_options(self) -> list[str]:
        return self.kdc.jvm_options()


def make_setup(kdc: MitKdc, keytab_dir: str | os.PathLike[str] | None = None, *,
               data_transfer_protection: str = PROTECTION) -> SecureSetup:
    """Create the service principals in ``kdc`` and the matching configuration."""
    path = Path(keytab_dir or kdc.keytab_dir) / "hdfs-service.keytab"
    keytab = kdc.add_principals([SERVICE, SPNEGO], path)
    return SecureSetup(kdc, keytab,
                       server_conf(kdc, keytab, data_transfer_protection=data_transfer_protection),
                       client_conf(kdc, data_transfer_protection=data_transfer_protection))


def server_conf(kdc: MitKdc, keytab: str, *,
                data_transfer_protection: str = PROTECTION) -> dict[str, str]:
    """Keys for ``HadoopCluster(conf=...)``: a Kerberos-secured NameNode and DataNodes."""
    service = kdc.principal(SERVICE)
    spnego = kdc.principal(SPNEGO)
    return {
        "hadoop.security.authentication": "kerberos",
        "hadoop.security.authorization": "true",
        "hadoop.rpc.protection": PROTECTION,
        "dfs.namenode.kerberos.principal": service,
        "dfs.namenode.keytab.file": keytab,
        "dfs.namenode.kerberos.internal.spnego.principal": spnego,
        "dfs.secondary.namenode.kerberos.principal": service,
        "dfs.secondary.namenode.keytab.file": keytab,
        "dfs.datanode.kerberos.principal": service,
        "dfs.datanode.keytab.file": keytab,
        "dfs.journalnode.kerberos.principal": service,
        "dfs.journalnode.keytab.file": keytab,
        "dfs.web.authentication.kerberos.principal": spnego,
        "dfs.web.authentication.kerberos.keytab": keytab,
        "dfs.block.access.token.enable": "true",
        "dfs.data.transfer.protection": data_transfer_protection,
        "dfs.http.policy": "HTTP_ONLY",
        "ignore.secure.ports.for.testing": "true",
        # a DataNode's first SASL attempt can race its own login on a 2-core box
        "ipc.client.connect.max.retries.on.sasl": "10",
    }


def client_conf(kdc: MitKdc, *, data_transfer_protection: str = PROTECTION) -> dict[str, str]:
    """Keys a client needs on top of the cluster's own client configuration."""
    return {
        "hadoop.security.authentication": "kerberos",
        "hadoop.rpc.protection": PROTECTION,
        "dfs.namenode.kerberos.principal": kdc.principal(SERVICE),
        "dfs.datanode.kerberos.principal": kdc.principal(SERVICE),
        "dfs.data.transfer.protection": data_transfer_protection,
        "dfs.block.access.token.enable": "true",
    }

