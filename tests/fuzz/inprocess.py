"""The four services in this process, each a real grpc.aio server over a real database.

Cheaper to start than processes (tests/support/stack.py) and enough for what
these tests observe: what each server answers. No worker runs: an order the
front door accepts waits in Temporal, and CreateOrder answers UNAVAILABLE
after ORDER_WORKFLOW_WAIT_SECONDS, which is a legitimate answer.
"""

from __future__ import annotations

import contextlib
import importlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from server.core.grpc_server import mark_serving
from server.core.service import RunningService, ServiceSpec, _prepare
from server.core.settings import Settings
from tests.support.stack import free_port

# The front door looks prices up in inventory, so it starts last.
NAMES = ("payments", "inventory", "shipping", "orders")


@dataclass
class Served:
    """One running service and a channel to it."""

    spec: ServiceSpec
    running: RunningService
    channel: grpc.aio.Channel


def settings_for(
    database_url: str, temporal_address: str, inventory_port: int, payments_port: int
) -> Settings:
    return Settings(  # type: ignore[call-arg]  # by alias, as the environment would
        DATABASE_URL=database_url,
        DATABASE_POOL_MAX=4,
        TEMPORAL_ADDRESS=temporal_address,
        TEMPORAL_TASK_QUEUE=f"fuzz-{uuid.uuid4().hex[:8]}",
        INVENTORY_ADDRESS=f"127.0.0.1:{inventory_port}",
        PAYMENTS_ADDRESS=f"127.0.0.1:{payments_port}",
        ORDERS_TEMPORAL_METRICS_PORT=free_port(),
        ORDER_WORKFLOW_WAIT_SECONDS=0.2,
        SHIPPING_BOOKING_SECONDS=0,
        PAYMENTS_SLOW_SECONDS=0,
    )


@contextlib.asynccontextmanager
async def serving(
    database_url: str, temporal_address: str, names: tuple[str, ...] = NAMES
) -> AsyncIterator[dict[str, Served]]:
    """Starts the named services on free ports; stops them on the way out."""
    ports = {name: free_port() for name in names}
    settings = settings_for(
        database_url, temporal_address, ports.get("inventory", 0), ports.get("payments", 0)
    )
    served: dict[str, Served] = {}
    try:
        for name in names:
            spec: ServiceSpec = importlib.import_module(f"server.{name}").SERVICE
            running = await _prepare(spec, settings, ports[name])
            await running.server.start()
            await mark_serving(running.health, [spec.full_name])
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
            served[name] = Served(spec, running, channel)
        yield served
    finally:
        for one in reversed(served.values()):
            await one.channel.close()
            await one.running.server.stop(0)
            await one.running.close()
