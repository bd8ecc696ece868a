"""The payment service: charges, refunds and their ledger."""

from __future__ import annotations

import asyncpg
import grpc

from clients.proto.payments.v1 import payments_pb2_grpc
from server.core.service import ServiceSpec
from server.core.settings import Settings


async def _register(server: grpc.aio.Server, settings: Settings, pool: asyncpg.Pool) -> None:
    from server.payments.gateway import SimulatedGateway
    from server.payments.payment_methods import PaymentMethodStore
    from server.payments.repository import PaymentRepository
    from server.payments.servicer import PaymentServicer

    gateway = SimulatedGateway(slow_seconds=settings.payments_slow_seconds)
    methods = PaymentMethodStore(pool, settings.payment_method_keyring())
    payments_pb2_grpc.add_PaymentServiceServicer_to_server(
        PaymentServicer(PaymentRepository(pool, gateway), methods), server
    )


SERVICE = ServiceSpec(
    name="payments",
    full_name="payments.v1.PaymentService",
    register=_register,
)
