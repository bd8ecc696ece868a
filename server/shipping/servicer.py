"""shipping.v1.ShippingService over gRPC."""

from __future__ import annotations

from typing import Any

import grpc
import structlog

from clients.errors import Error, Reason
from clients.proto.shipping.v1 import shipping_pb2 as pb
from clients.proto.shipping.v1 import shipping_pb2_grpc
from server.core.convert import timestamp
from server.core.validation import Violations
from server.shipping.booking import address_json, address_message
from server.shipping.carrier import SimulatedCarrier
from server.shipping.repository import Shipment, ShippingRepository

log = structlog.get_logger(__name__)

MAX_ITEMS = 1_000_000_000

_STATES = {
    "BOOKING": pb.SHIPMENT_STATE_BOOKING,
    "BOOKED": pb.SHIPMENT_STATE_BOOKED,
    "CANCELLED": pb.SHIPMENT_STATE_CANCELLED,
}


def _shipment(shipment: Shipment) -> pb.Shipment:
    message = pb.Shipment(
        shipment_id=shipment.shipment_id,
        order_id=shipment.order_id,
        state=_STATES[shipment.state],
        tracking_number=shipment.tracking_number or "",
        create_time=timestamp(shipment.created_at),
        expected_booked_time=timestamp(shipment.expected_booked_at),
    )
    if shipment.address is not None:
        message.address.CopyFrom(address_message(shipment.address))
    return message


def _booking_address(
    request: pb.CreateShipmentRequest | pb.RebookShipmentRequest,
) -> dict[str, Any]:
    """The address of a valid booking the carrier can make, as the repository keeps it."""
    errors = Violations().require("order_id", request.order_id)
    errors.address("address", request.address, request.HasField("address"))
    if not 1 <= request.item_count <= MAX_ITEMS:
        errors.add("item_count", f"must be from 1 to {MAX_ITEMS:,}")
    errors.raise_if_any()
    if not SimulatedCarrier.delivers_to(request.address.country_code):
        raise Error(
            Reason.ADDRESS_UNDELIVERABLE,
            f"the carrier does not deliver to {request.address.country_code}",
            {"order_id": request.order_id, "country_code": request.address.country_code},
        )
    return address_json(request.address)


class ShippingServicer(shipping_pb2_grpc.ShippingServiceServicer):
    def __init__(self, repository: ShippingRepository) -> None:
        self._repository = repository

    async def CreateShipment(
        self, request: pb.CreateShipmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateShipmentResponse:
        address = _booking_address(request)
        shipment = await self._repository.create(request.order_id, address, request.item_count)
        log.info(
            "shipment requested",
            order_id=request.order_id,
            shipment_id=shipment.shipment_id,
            state=shipment.state,
        )
        return pb.CreateShipmentResponse(shipment=_shipment(shipment))

    async def RebookShipment(
        self, request: pb.RebookShipmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.RebookShipmentResponse:
        address = _booking_address(request)
        shipment, moved = await self._repository.rebook(
            request.order_id, address, request.item_count
        )
        if moved:
            log.info(
                "shipment rebooked",
                order_id=request.order_id,
                shipment_id=shipment.shipment_id,
                state=shipment.state,
            )
        return pb.RebookShipmentResponse(shipment=_shipment(shipment))

    async def CancelShipment(
        self, request: pb.CancelShipmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelShipmentResponse:
        Violations().require("order_id", request.order_id).raise_if_any()
        shipment = await self._repository.cancel(request.order_id)
        log.info("shipment cancelled", order_id=request.order_id)
        return pb.CancelShipmentResponse(shipment=_shipment(shipment) if shipment else None)

    async def GetShipment(
        self, request: pb.GetShipmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetShipmentResponse:
        Violations().require("order_id", request.order_id).raise_if_any()
        shipment = await self._repository.get(request.order_id)
        return pb.GetShipmentResponse(shipment=_shipment(shipment))
