"""The shipping service: carrier bookings."""

from __future__ import annotations

import asyncpg
import grpc

from clients.proto.shipping.v1 import shipping_pb2_grpc
from server.core.service import ServiceSpec
from server.core.settings import Settings


async def _register(server: grpc.aio.Server, settings: Settings, pool: asyncpg.Pool) -> None:
    from server.shipping.carrier import SimulatedCarrier
    from server.shipping.repository import ShippingRepository
    from server.shipping.servicer import ShippingServicer

    carrier = SimulatedCarrier(booking_seconds=settings.shipping_booking_seconds)
    shipping_pb2_grpc.add_ShippingServiceServicer_to_server(
        ShippingServicer(ShippingRepository(pool, carrier)), server
    )


SERVICE = ServiceSpec(
    name="shipping",
    full_name="shipping.v1.ShippingService",
    register=_register,
)
