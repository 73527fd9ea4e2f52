"""CSI Identity service: who we are, what we offer, whether we are ready."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import wrappers_pb2

from csi_driver.config import Config
from csi_driver.rpc import handler
from hdfs_csi_common import __version__
from hdfs_csi_pb import csi_pb2, csi_pb2_grpc

Service = csi_pb2.PluginCapability.Service
Expansion = csi_pb2.PluginCapability.VolumeExpansion


class IdentityServicer(csi_pb2_grpc.IdentityServicer):
    def __init__(self, config: Config, ready: Any = None):
        self.config = config
        self._ready = ready  # a threading.Event set once start-up work is done

    @handler
    def GetPluginInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        return csi_pb2.GetPluginInfoResponse(name=self.config.driver_name,
                                             vendor_version=__version__)

    @handler
    def GetPluginCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:
        # The plugin "as a whole" (every instance reports the same set, whatever
        # its --mode): a controller service, and quota expansion that works
        # while the volume is mounted.
        return csi_pb2.GetPluginCapabilitiesResponse(capabilities=[
            csi_pb2.PluginCapability(service=Service(type=Service.CONTROLLER_SERVICE)),
            csi_pb2.PluginCapability(volume_expansion=Expansion(type=Expansion.ONLINE)),
        ])

    @handler
    def Probe(self, request: Any, context: grpc.ServicerContext) -> Any:
        ready = True if self._ready is None else bool(self._ready.is_set())
        return csi_pb2.ProbeResponse(ready=wrappers_pb2.BoolValue(value=ready))
