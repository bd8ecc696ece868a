"""The payment service in process, over gRPC, against a real Postgres database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest_asyncio

from clients.proto.payments.v1 import payments_pb2_grpc
from server.core.database import create_pool, migrate
from server.core.grpc_server import create_server
from server.core.settings import Settings
from server.payments import SERVICE

# Long enough for concurrent calls to overlap inside one charge, short enough to keep tests quick.
SLOW_SECONDS = 0.3


@pytest_asyncio.fixture(scope="session")
async def payments_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the session's database with the payments schema migrated."""
    pool = await create_pool(database_url, max_size=12)
    await migrate(pool, SERVICE.name)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(scope="session")
async def payments(
    payments_pool: asyncpg.Pool,
) -> AsyncIterator[payments_pb2_grpc.PaymentServiceStub]:
    """A client of a PaymentService wired as the service process wires it."""
    server, port, _ = create_server("127.0.0.1:0", service_names=[SERVICE.full_name])
    settings = Settings(PAYMENTS_SLOW_SECONDS=SLOW_SECONDS)  # type: ignore[call-arg]
    await SERVICE.register(server, settings, payments_pool)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield payments_pb2_grpc.PaymentServiceStub(channel)
    finally:
        await server.stop(None)
