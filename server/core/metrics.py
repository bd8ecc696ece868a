"""Prometheus metrics: the /metrics endpoint, per-RPC metrics, pool gauges.

Every process serves /metrics on a port of its own (settings: `*_METRICS_PORT`)
from prometheus_client's default registry, which also holds the standard
`process_*` and `python_*` collectors. Business metrics are defined next to
the code that counts them (server/orders/metrics.py, server/payments/metrics.py);
the order workflow's own go through the Temporal SDK's endpoint. docs/metrics.md
lists them all.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator

import asyncpg
import prometheus_client
import structlog
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

# Series named like the widely used go-grpc-prometheus ones, so existing
# dashboards and alerts carry over.
RPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server.",
    ["grpc_service", "grpc_method"],
)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by gRPC status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_REFUSED = Counter(
    "grpc_server_refused_total",
    "RPCs refused before their handler ran (no or bad credentials, a role not allowed), by reason.",
    ["grpc_service", "grpc_method", "reason"],
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from receiving an RPC to sending its last response.",
    ["grpc_service", "grpc_method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
# The circuit breakers on calls to other services (server/core/breaker_interceptor.py).
CIRCUIT_STATE = Gauge(
    "downstream_circuit_state",
    "State of the circuit breaker on calls to a service: 0 closed, 1 half-open, 2 open.",
    ["service"],
)
CIRCUIT_REFUSED = Counter(
    "downstream_circuit_refused_total",
    "Calls to a service refused at once by its circuit breaker, open or probing.",
    ["service"],
)


class _Pools(Collector):
    """Connection counts of the process's asyncpg pools, read at scrape time."""

    def __init__(self) -> None:
        self._pools: dict[str, asyncpg.Pool] = {}

    def watch(self, name: str, pool: asyncpg.Pool) -> None:
        self._pools[name] = pool

    def collect(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            "db_pool_connections",
            "Open connections of a database pool, in use or idle.",
            labels=["pool", "state"],
        )
        maximum = GaugeMetricFamily(
            "db_pool_max_connections", "Most connections a pool may open.", labels=["pool"]
        )
        for name, pool in list(self._pools.items()):
            if pool.is_closing():
                continue
            size, idle = pool.get_size(), pool.get_idle_size()
            connections.add_metric([name, "in_use"], size - idle)
            connections.add_metric([name, "idle"], idle)
            maximum.add_metric([name], pool.get_max_size())
        yield connections
        yield maximum


_POOLS = _Pools()
prometheus_client.REGISTRY.register(_POOLS)


def watch_pool(name: str, pool: asyncpg.Pool) -> None:
    """Reports the pool's connections as db_pool_connections{pool=name}."""
    _POOLS.watch(name, pool)


EVENT_LOOP_LAG = Histogram(
    "event_loop_lag_seconds",
    "How late the process's event loop woke from a short sleep: how long a call that"
    " arrived then waited for its turn",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
# Often enough to see stalls of tens of milliseconds, seldom enough to cost nothing.
LOOP_LAG_PERIOD = 0.05


def watch_event_loop() -> asyncio.Task[None]:
    """Measures the running event loop's lag into event_loop_lag_seconds until cancelled.

    Every call a process serves waits for its event loop; a loop busy with
    other work, or stopped by a collection or another thread holding the
    interpreter, delays them all, which no per-call timer shows.
    """

    async def measure() -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(LOOP_LAG_PERIOD)
            EVENT_LOOP_LAG.observe(max(0.0, time.perf_counter() - asked - LOOP_LAG_PERIOD))

    return asyncio.create_task(measure(), name="event-loop-lag")


GC_PAUSE = Histogram(
    "python_gc_pause_seconds",
    "How long the interpreter stopped for a garbage collection, by generation",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)


class _Collections:
    """Times each garbage collection: gc's callback, called twice per collection."""

    def __init__(self) -> None:
        # Resolved once: a busy process collects its youngest objects
        # hundreds of times a second, and this runs on each.
        self._by_generation = [GC_PAUSE.labels(str(g)) for g in range(3)]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        # A collection starts wherever an allocation tips it, even deep in
        # recursion: one that has no frames left to time goes untimed rather
        # than printing a traceback into the process's log.
        try:
            if phase == "start":
                self._started = time.perf_counter()
            else:
                elapsed = time.perf_counter() - self._started
                self._by_generation[info["generation"]].observe(elapsed)
        except RecursionError:
            pass


_COLLECTIONS = _Collections()


def watch_collections() -> None:
    """Times every garbage collection into python_gc_pause_seconds (once per process).

    A full collection walks every object the process holds and stops
    everything while it does: the event loop's worst stalls, which the lag
    histogram shows but cannot explain.
    """
    if _COLLECTIONS not in gc.callbacks:
        gc.callbacks.append(_COLLECTIONS)


def serve_metrics(host: str, port: int) -> int:
    """Serves /metrics on host:port (0: a free port) from a daemon thread; returns the port."""
    # One series per counter, without the *_created timestamps beside them.
    prometheus_client.disable_created_metrics()
    try:
        server, _ = prometheus_client.start_http_server(port, addr=host)
    except OSError as error:
        raise SystemExit(
            f"cannot serve metrics on {host}:{port} ({error.strerror}); "
            "choose another port with the process's *_METRICS_PORT setting"
        ) from None
    bound = int(server.server_port)
    log.info("metrics served", address=f"http://{host}:{bound}/metrics")
    return bound
