"""The shipping and inventory services in process, over gRPC, against a real Postgres database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import grpc
import pytest_asyncio

from clients.proto.inventory.v1 import inventory_pb2_grpc
from clients.proto.shipping.v1 import shipping_pb2_grpc
from server import inventory, shipping
from server.core.database import create_pool, migrate
from server.core.grpc_server import create_server
from server.core.service import ServiceSpec
from server.core.settings import Settings

# Long enough to see a booking in BOOKING, short enough to keep tests quick.
SLOW_BOOKING_SECONDS = 0.4


@asynccontextmanager
async def serving(
    spec: ServiceSpec, settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to `spec`'s service, wired as its process wires it."""
    server, port, _ = create_server("127.0.0.1:0", service_names=[spec.full_name])
    await spec.register(server, settings, pool)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


async def _migrated_pool(database_url: str, spec: ServiceSpec) -> asyncpg.Pool:
    pool = await create_pool(database_url, max_size=4)
    await migrate(pool, spec.name)
    return pool


@pytest_asyncio.fixture(scope="session")
async def shipping_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await _migrated_pool(database_url, shipping.SERVICE)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(scope="session")
async def inventory_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await _migrated_pool(database_url, inventory.SERVICE)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(scope="session")
async def carrier(
    shipping_pool: asyncpg.Pool,
) -> AsyncIterator[shipping_pb2_grpc.ShippingServiceStub]:
    """Shipping whose carrier confirms a booking in its answer."""
    settings = Settings(SHIPPING_BOOKING_SECONDS=0)  # type: ignore[call-arg]
    async with serving(shipping.SERVICE, settings, shipping_pool) as channel:
        yield shipping_pb2_grpc.ShippingServiceStub(channel)


@pytest_asyncio.fixture(scope="session")
async def slow_carrier(
    shipping_pool: asyncpg.Pool,
) -> AsyncIterator[shipping_pb2_grpc.ShippingServiceStub]:
    """Shipping whose carrier confirms a booking SLOW_BOOKING_SECONDS after it."""
    settings = Settings(SHIPPING_BOOKING_SECONDS=SLOW_BOOKING_SECONDS)  # type: ignore[call-arg]
    async with serving(shipping.SERVICE, settings, shipping_pool) as channel:
        yield shipping_pb2_grpc.ShippingServiceStub(channel)


@pytest_asyncio.fixture(scope="session")
async def stock(
    inventory_pool: asyncpg.Pool,
) -> AsyncIterator[inventory_pb2_grpc.InventoryServiceStub]:
    async with serving(inventory.SERVICE, Settings(), inventory_pool) as channel:
        yield inventory_pb2_grpc.InventoryServiceStub(channel)
