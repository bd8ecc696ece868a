"""The four services in this process, each a real grpc.aio server over a real database.

Cheaper to start than processes (tests/support/stack.py) and enough for what
these tests observe: what each server answers. No worker runs: an order the
front door accepts waits in Temporal, and CreateOrder answers UNAVAILABLE
after ORDER_WORKFLOW_WAIT_SECONDS, which is a legitimate answer.

Authentication is on, as in production; each call carries the token of a
role the table lets make it, so that what is tested is the request's fate.
"""

from __future__ import annotations

import contextlib
import importlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from server.core.auth import Role
from server.core.grpc_server import mark_serving
from server.core.service import RunningService, ServiceSpec, _prepare
from server.core.settings import Settings
from server.devstack.credentials import DevCredentials, ensure_credentials
from tests.support.auth import token_per_method
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
    database_url: str,
    temporal_address: str,
    inventory_port: int,
    payments_port: int,
    credentials: DevCredentials,
) -> Settings:
    return Settings(  # type: ignore[call-arg]  # by alias, as the environment would
        JWT_SECRET_FILE=str(credentials.secret_file),
        SERVICE_TOKEN_FILE=str(credentials.token_file("front-door")),
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
    database_url: str,
    temporal_address: str,
    names: tuple[str, ...] = NAMES,
    credentials: DevCredentials | None = None,
) -> AsyncIterator[dict[str, Served]]:
    """Starts the named services on free ports; stops them on the way out.

    They check tokens signed with `credentials` (by default, new ones).
    """
    ports = {name: free_port() for name in names}
    folder = tempfile.TemporaryDirectory(prefix="fuzz-auth-")
    credentials = credentials or ensure_credentials(Path(folder.name))
    tokens = {
        role: credentials.token(role.value)
        for role in (Role.OPERATOR, Role.WORKER, Role.FRONT_DOOR)
    }
    settings = settings_for(
        database_url,
        temporal_address,
        ports.get("inventory", 0),
        ports.get("payments", 0),
        credentials,
    )
    served: dict[str, Served] = {}
    try:
        for name in names:
            spec: ServiceSpec = importlib.import_module(f"server.{name}").SERVICE
            running = await _prepare(spec, settings, ports[name])
            await running.server.start()
            await mark_serving(running.health, spec.full_names)
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{running.port}", interceptors=token_per_method(tokens)
            )
            served[name] = Served(spec, running, channel)
        yield served
    finally:
        for one in reversed(served.values()):
            await one.channel.close()
            await one.running.server.stop(0)
            await one.running.close()
        folder.cleanup()
