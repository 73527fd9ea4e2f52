"""CSI Node service: unpack, call :class:`NodeManager`, pack."""

from __future__ import annotations

from typing import Any

import grpc

from csi_driver.config import Config
from csi_driver.node_manager import NodeManager
from csi_driver.rpc import handler, optional_capability, unimplemented
from hdfs_csi_pb import csi_pb2, csi_pb2_grpc

RPC = csi_pb2.NodeServiceCapability.RPC
Usage = csi_pb2.VolumeUsage

CAPABILITIES = (RPC.STAGE_UNSTAGE_VOLUME, RPC.GET_VOLUME_STATS, RPC.VOLUME_CONDITION)


class NodeServicer(csi_pb2_grpc.NodeServicer):
    def __init__(self, config: Config, manager: NodeManager):
        self.config = config
        self.core = manager

    @handler
    def NodeGetCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:
        return csi_pb2.NodeGetCapabilitiesResponse(capabilities=[
            csi_pb2.NodeServiceCapability(rpc=RPC(type=t)) for t in CAPABILITIES])

    @handler
    def NodeGetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        return csi_pb2.NodeGetInfoResponse(node_id=self.config.node_id,
                                           max_volumes_per_node=self.config.max_volumes_per_node)

    @handler
    def NodeStageVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.core.stage(request.volume_id, request.staging_target_path,
                        optional_capability(request, "volume_capability"),
                        dict(request.secrets), dict(request.volume_context))
        return csi_pb2.NodeStageVolumeResponse()

    @handler
    def NodeUnstageVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.core.unstage(request.volume_id, request.staging_target_path)
        return csi_pb2.NodeUnstageVolumeResponse()

    @handler
    def NodePublishVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.core.publish(request.volume_id, request.staging_target_path, request.target_path,
                          optional_capability(request, "volume_capability"), request.readonly,
                          dict(request.secrets), dict(request.volume_context))
        return csi_pb2.NodePublishVolumeResponse()

    @handler
    def NodeUnpublishVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.core.unpublish(request.volume_id, request.target_path)
        return csi_pb2.NodeUnpublishVolumeResponse()

    @handler
    def NodeGetVolumeStats(self, request: Any, context: grpc.ServicerContext) -> Any:
        s = self.core.stats(request.volume_id, request.volume_path)
        usage = []
        if s.bytes is not None:
            total, used, available = s.bytes
            usage.append(Usage(unit=Usage.BYTES, total=total, used=used, available=available))
        if s.inodes is not None:
            total, used, available = s.inodes
            usage.append(Usage(unit=Usage.INODES, total=total, used=used, available=available))
        return csi_pb2.NodeGetVolumeStatsResponse(
            usage=usage,
            volume_condition=csi_pb2.VolumeCondition(abnormal=s.abnormal, message=s.message))

    NodeExpandVolume = unimplemented(
        "NodeExpandVolume is not needed: a quota grows without node work")
