"""CSI Controller service: unpack, call :class:`Provisioner`, pack."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import wrappers_pb2

from csi_driver.config import Config
from csi_driver.errors import InvalidArgument
from csi_driver.provisioner import Provisioner
from csi_driver.rpc import (
    capability, capacity_range, handler, optional_capability, unimplemented,
)
from csi_driver.volumes import check_volume_id
from hdfs_csi_pb import csi_pb2, csi_pb2_grpc

RPC = csi_pb2.ControllerServiceCapability.RPC

CAPABILITIES = (RPC.CREATE_DELETE_VOLUME, RPC.GET_CAPACITY, RPC.EXPAND_VOLUME)


class ControllerServicer(csi_pb2_grpc.ControllerServicer):
    def __init__(self, config: Config, provisioner: Provisioner):
        self.config = config
        self.core = provisioner

    @handler
    def ControllerGetCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:
        return csi_pb2.ControllerGetCapabilitiesResponse(capabilities=[
            csi_pb2.ControllerServiceCapability(rpc=RPC(type=t)) for t in CAPABILITIES])

    @handler
    def CreateVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        vol = self.core.create_volume(
            request.name,
            [capability(c) for c in request.volume_capabilities],
            capacity_range(request),
            dict(request.parameters),
            dict(request.secrets),
            content_source=request.HasField("volume_content_source"),
            mutable_parameters=dict(request.mutable_parameters),
        )
        return csi_pb2.CreateVolumeResponse(volume=csi_pb2.Volume(
            volume_id=vol.volume_id, capacity_bytes=vol.capacity_bytes,
            volume_context=vol.context))

    @handler
    def DeleteVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_volume_id(request.volume_id)
        self.core.delete_volume(request.volume_id, dict(request.secrets))
        return csi_pb2.DeleteVolumeResponse()

    @handler
    def ControllerExpandVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_volume_id(request.volume_id)
        capacity = self.core.expand_volume(
            request.volume_id, capacity_range(request),
            optional_capability(request, "volume_capability"), dict(request.secrets))
        return csi_pb2.ControllerExpandVolumeResponse(capacity_bytes=capacity,
                                                      node_expansion_required=False)

    @handler
    def ValidateVolumeCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_volume_id(request.volume_id)
        if not request.volume_capabilities:
            raise InvalidArgument("volume_capabilities is required")
        if request.mutable_parameters:
            raise InvalidArgument("mutable_parameters are not supported (no MODIFY_VOLUME)")
        confirmed, message = self.core.validate_capabilities(
            request.volume_id, dict(request.volume_context),
            [capability(c) for c in request.volume_capabilities],
            dict(request.parameters), dict(request.secrets))
        if not confirmed:
            return csi_pb2.ValidateVolumeCapabilitiesResponse(message=message)
        return csi_pb2.ValidateVolumeCapabilitiesResponse(
            confirmed=csi_pb2.ValidateVolumeCapabilitiesResponse.Confirmed(
                volume_context=dict(request.volume_context),
                volume_capabilities=list(request.volume_capabilities),
                parameters=dict(request.parameters)))

    @handler
    def GetCapacity(self, request: Any, context: grpc.ServicerContext) -> Any:
        available = self.core.get_capacity(
            [capability(c) for c in request.volume_capabilities], dict(request.parameters))
        response = csi_pb2.GetCapacityResponse(available_capacity=available)
        if self.config.max_capacity:
            response.maximum_volume_size.CopyFrom(
                wrappers_pb2.Int64Value(value=self.config.max_capacity))
        return response

    # -- not offered (and not advertised): UNIMPLEMENTED per the spec ----------------------------
    ControllerPublishVolume = unimplemented(
        "ControllerPublishVolume (HDFS needs no attach step) is not supported by this driver")
    ControllerUnpublishVolume = unimplemented(
        "ControllerUnpublishVolume (HDFS needs no attach step) is not supported by this driver")
    ListVolumes = unimplemented("ListVolumes is not supported by this driver")
    CreateSnapshot = unimplemented("CreateSnapshot is not supported by this driver")
    DeleteSnapshot = unimplemented("DeleteSnapshot is not supported by this driver")
    ListSnapshots = unimplemented("ListSnapshots is not supported by this driver")
    GetSnapshot = unimplemented("GetSnapshot is not supported by this driver")
    ControllerGetVolume = unimplemented("ControllerGetVolume is not supported by this driver")
    ControllerModifyVolume = unimplemented("ControllerModifyVolume is not supported by this driver")
