"""A typed async client of shipping.v1.ShippingService: the carrier's bookings."""

from __future__ import annotations

import functools
from typing import cast

from clients.proto.shipping.v1 import shipping_pb2, shipping_pb2_grpc
from clients.service import ServiceClient


class ShippingClient(ServiceClient):
    """Reads shipments (operators); booking and cancelling are the order workflow's."""

    @functools.cached_property
    def _stub(self) -> shipping_pb2_grpc.ShippingServiceAsyncStub:
        # The generated stubs type an aio channel's stub as the Async one.
        return cast(
            "shipping_pb2_grpc.ShippingServiceAsyncStub",
            shipping_pb2_grpc.ShippingServiceStub(self.channel),
        )

    async def get_shipment(self, order_id: str) -> shipping_pb2.Shipment:
        """The order's shipment; SHIPMENT_NOT_FOUND when it has none."""
        request = shipping_pb2.GetShipmentRequest(order_id=order_id)
        return (await self._unary(self._stub.GetShipment, request)).shipment
