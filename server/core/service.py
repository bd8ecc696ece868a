"""Running one service: pool, migrations, gRPC server, graceful stop.

Each service package exposes a `SERVICE` (a `ServiceSpec`); `run` takes it
from there, so the services share one start-up path. Its ports and the rest
of its settings come from its row in server/core/services.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import grpc
import structlog
from grpc_health.v1 import health

from server.core.auth import load_guard
from server.core.credentials import server_credentials
from server.core.database import create_pool, migrate
from server.core.grpc_server import (
    OrderIdOf,
    create_server,
    order_id_field,
    serve_until_signalled,
)
from server.core.metrics import watch_pool
from server.core.process import run as run_process
from server.core.settings import Settings

log = structlog.get_logger(__name__)

Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ServiceSpec:
    """What makes one service: its name (in server/core/services.py), contract and wiring."""

    name: str
    full_name: str  # e.g. "payments.v1.PaymentService"
    # Adds the servicer to the server; returns what to close at shutdown.
    register: Callable[[grpc.aio.Server, Settings, asyncpg.Pool], Awaitable[Closer | None]]
    # Which order a request is about, for spans and log lines.
    order_id_of: OrderIdOf = order_id_field
    # Other services `register` adds to the same server (e.g. the front
    # door's "operator.v1.OperatorService"): in health and reflection too.
    also_serves: tuple[str, ...] = ()

    @property
    def full_names(self) -> list[str]:
        """Every service the process serves, its own first."""
        return [self.full_name, *self.also_serves]


@dataclass
class RunningService:
    spec: ServiceSpec
    server: grpc.aio.Server
    port: int
    health: health.HealthServicer
    pool: asyncpg.Pool
    closers: list[Closer] = field(default_factory=list)

    async def close(self) -> None:
        """Releases what the service holds, once its server has stopped."""
        for closer in reversed(self.closers):
            await closer()
        await self.pool.close()


async def _prepare(spec: ServiceSpec, settings: Settings, port: int) -> RunningService:
    # Keys and certificates first: a missing one stops the process before it does anything.
    guard, credentials = load_guard(settings), server_credentials(settings)
    pool = await create_pool(
        settings.database_url_of(spec.name), max_size=settings.database_pool_max
    )
    watch_pool(spec.name, pool)
    await migrate(pool, spec.name)
    server, bound, health_servicer = create_server(
        f"{settings.bind_host_of(spec.name)}:{port}",
        service_names=spec.full_names,
        order_id_of=spec.order_id_of,
        guard=guard,
        credentials=credentials,
        reflection_on=spec.name in settings.reflection,
    )
    closer = await spec.register(server, settings, pool)
    return RunningService(spec, server, bound, health_servicer, pool, [closer] if closer else [])


async def _run(spec: ServiceSpec, settings: Settings) -> None:
    running = await _prepare(spec, settings, settings.port_of(spec.name))
    address = f"{settings.bind_host_of(spec.name)}:{running.port}"
    await serve_until_signalled(
        running.server,
        running.health,
        spec.full_names,
        grace=settings.shutdown_grace_seconds,
        on_stop=running.close,
        # Said once serving, with the signal handlers in place: whoever waits
        # for this line may stop the process at once.
        on_serving=lambda: log.info(
            "listening",
            grpc_service=spec.full_name,
            address=address,
            tls=settings.tls_mode,
            auth="on" if settings.auth_enabled else "OFF",
            event_loop=loop_name(),
        ),
    )


def loop_name() -> str:
    """Which event loop runs this process: "uvloop" or "asyncio" (EVENT_LOOP)."""
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def run(spec: ServiceSpec) -> None:
    """Process entry point (server/core/process.py): serve until signalled."""
    run_process(spec.name, lambda settings: _run(spec, settings), chosen_loop=True)
