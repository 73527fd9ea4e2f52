"""The hdfs-csi CSI v1 driver (Identity, Controller and Node services).

Layers, top to bottom:

* ``identity.py``, ``controller.py``, ``node.py``: gRPC servicers that only
  unpack requests, call the core and pack responses (errors become statuses
  through the one table in ``errors.py``).
* ``provisioner.py`` (dynamic volumes: HDFS directories with a space quota)
  and ``node_manager.py`` (FUSE mount per staged volume, bind mounts per pod).
* Helpers with one job each: ``params.py`` (every key name, strict parsing),
  ``volumes.py`` (volume ids), ``paths.py`` (traversal-safe paths),
  ``capabilities.py``, ``locks.py`` (ABORTED on concurrent calls),
  ``state.py`` (node state on disk), ``credentials.py`` (keytab files),
  ``mounter.py`` (the mount commands), ``clients.py`` (HDFS clients).
* ``server.py`` (gRPC on a unix socket, logging interceptor from
  ``logging_interceptor.py``) and ``cli.py`` (``hdfs-csi driver``).
"""

from csi_driver.config import DRIVER_NAME

__all__ = ["DRIVER_NAME"]
