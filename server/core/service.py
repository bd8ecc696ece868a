"""Running one service: pool, migrations, gRPC server, graceful stop.

Each service package exposes a `SERVICE` (a `ServiceSpec`); `run` takes it
from there, so the four services share one start-up path.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from server.core.logging import configure_logging, log_file
from server.core.metrics import serve_metrics, watch_event_loop, watch_pool
from server.core.settings import Settings, load_settings
from server.core.telemetry import configure_tracing

log = structlog.get_logger(__name__)

Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ServiceSpec:
    """What makes one service: its name, contract, port and wiring."""

    name: str
    full_name: str  # e.g. "payments.v1.PaymentService"
    port: Callable[[Settings], int]
    # Adds the servicer to the server; returns what to close at shutdown.
    register: Callable[[grpc.aio.Server, Settings, asyncpg.Pool], Awaitable[Closer | None]]
    # Where the process serves /metrics.
    metrics_port: Callable[[Settings], int]
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
    lag = watch_event_loop()
    running = await _prepare(spec, settings, spec.port(settings))
    running.closers.insert(0, lambda: _stopped(lag))
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
        ),
    )


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def run(spec: ServiceSpec) -> None:
    """Process entry point: settings, logs, traces, metrics, then serve until signalled."""
    settings = load_settings()
    configure_logging(
        spec.name,
        log_format=settings.log_format,
        level=settings.log_level,
        log_file=log_file(settings, spec.name),
    )
    configure_tracing(spec.name, settings)
    serve_metrics(settings.metrics_host, spec.metrics_port(settings))
    asyncio.run(_run(spec, settings))
