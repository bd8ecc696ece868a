"""Starting a process of the platform: what every program does before its own work.

`run` reads the settings, lowers the process's CPU priority if its settings
say so (WORKER_NICE), configures logging (and the process's log file
under LOG_DIR), tracing and its /metrics endpoint, then runs the process's
main coroutine under asyncio, with the event loop's lag measured while it
runs: the gRPC services on the event loop EVENT_LOOP names (uvloop by
default), the other processes on asyncio's own. A service
(server/core/service.py), the worker (worker/main.py), the codec server
(server/codec_server.py) and the maintenance pass
(server/orders/maintenance.py) each bring only their main coroutine.

Until its main coroutine asks for `stop_signal()`, a process has the default
handling of SIGTERM and SIGINT: a process stopped while it starts simply ends.
From then on either signal sets the event it returned, and the process stops
gracefully. (A gRPC service asks through `serve_until_signalled`,
server/core/grpc_server.py.)
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog

from server.core.logging import configure_logging, log_file
from server.core.metrics import serve_metrics, watch_collections, watch_event_loop
from server.core.settings import Settings, load_settings
from server.core.telemetry import configure_tracing

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]

log = structlog.get_logger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run(
    name: str,
    main: Callable[[Settings], Coroutine[Any, Any, T]],
    *,
    metrics: bool = True,
    traced: bool = True,
    logs_to_file: bool = True,
    chosen_loop: bool = False,
) -> T:
    """Starts process `name` (its log lines' `service`) and runs `main(settings)` to its end.

    `metrics`: serve /metrics on the process's <NAME>_METRICS_PORT and measure
    its event loop's lag; `traced`: install its tracer provider;
    `logs_to_file`: also append its JSON log lines to <LOG_DIR>/<name>.jsonl;
    `chosen_loop`: run on the event loop EVENT_LOOP names, not asyncio's.
    """
    settings = load_settings()
    # Before any thread starts (the metrics server, the span exporter, the
    # SDK's): on Linux a thread inherits its priority from the one starting it.
    if nice := settings.nice_of(name):
        os.nice(nice)
    configure_logging(
        name,
        log_format=settings.log_format,
        level=settings.log_level,
        log_file=log_file(settings, name) if logs_to_file else None,
    )
    if traced:
        configure_tracing(name, settings)
    factory = loop_factory(settings.event_loop) if chosen_loop else None
    if metrics:
        serve_metrics(settings.metrics_host, settings.metrics_port_of(name))
        watch_collections()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_with_lag_watched(main(settings)) if metrics else main(settings))


def loop_factory(choice: str) -> LoopFactory | None:
    """What makes the event loop `choice` names (EVENT_LOOP); None for asyncio's own."""
    if choice != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows)
        log.warning("uvloop is not installed: running on asyncio's event loop")
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def started() -> None:
    """Says the process has started: what it holds now is kept out of garbage collections.

    What a process loads while it starts (modules, its server, clients and
    tables) lives as long as it does, yet every full collection walks all of
    it and stops the process meanwhile: about 45 ms for the front door, a
    stall every call in flight waits behind. `gc.freeze` moves it to a
    generation no collection visits; what the process allocates from then
    on is collected as before. Called by `serve_until_signalled` and the worker.
    """
    gc.collect()
    gc.freeze()


def stop_signal() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets from now on: the process's cue to stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _with_lag_watched(main: Coroutine[Any, Any, T]) -> T:
    lag = watch_event_loop()
    try:
        return await main
    finally:
        lag.cancel()
