"""The gRPC server every service runs: health, reflection, errors, telemetry, shutdown.

`create_server` builds a grpc.aio server with the standard health service and
server reflection (so `grpcurl list` and `describe` work), and one interceptor
around every handler that

* continues the caller's trace (W3C `traceparent` in the metadata) in a server
  span, so the handler's own calls and queries become its children;
* counts the call and times it (server/core/metrics.py), by status code;
* binds `order_id` (when the request names an order) to the log context, so
  every log line the handler writes carries it beside the trace id;
* turns `clients.errors.Error` into a `google.rpc.Status` with ErrorInfo, and
  anything unexpected into INTERNAL with a generic message; either way the
  ErrorInfo metadata carries the `trace_id`, to find the server's side of it.

`serve` runs the server until SIGTERM or SIGINT, then stops gracefully.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

from clients.errors import Error, Reason
from server.core.metrics import RPC_HANDLED, RPC_SECONDS, RPC_STARTED
from server.core.telemetry import current_trace_id

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)

OrderIdOf = Callable[[Any], str]

# Infrastructure calls: counted, never traced (health checks would bury the orders).
_UNTRACED = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# Codes that say the server failed, not the caller (OpenTelemetry's rule for server spans).
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def order_id_field(request: Any) -> str:
    """The request's `order_id` field, if it has one."""
    value = getattr(request, "order_id", "")
    return value if isinstance(value, str) else ""


async def _abort(context: grpc.aio.ServicerContext, error: Error) -> None:
    trace_id = current_trace_id()
    if trace_id:
        error = dataclasses.replace(error, metadata={**error.metadata, "trace_id": trace_id})
    await context.abort_with_status(rpc_status.to_status(error.to_status()))


def _unexpected(method: str, exc: BaseException) -> Error:
    log.exception("unexpected error in handler", method=method, exc_info=exc)
    return Error(Reason.INTERNAL, "internal error; the server log has the details")


def _code_of(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status a handler set on its context itself (e.g. with context.abort)."""
    try:
        code = context.code()
    except Exception:  # not offered by every grpc version
        return grpc.StatusCode.UNKNOWN
    if isinstance(code, grpc.StatusCode):
        return code
    for known in grpc.StatusCode:
        if known.value[0] == code:
            return known
    return grpc.StatusCode.OK if code is None else grpc.StatusCode.UNKNOWN


class _Outcome:
    """How a call ended, as the handler wrapper saw it."""

    code: grpc.StatusCode | None = None
    reason: str | None = None


@contextmanager
def _observed(
    method: str, request: Any, context: grpc.aio.ServicerContext, order_id_of: OrderIdOf
) -> Iterator[_Outcome]:
    """Span, log context and metrics around one call."""
    service, _, name = method.lstrip("/").partition("/")
    RPC_STARTED.labels(service, name).inc()
    started = time.perf_counter()
    outcome = _Outcome()
    order_id = order_id_of(request)
    attributes: dict[str, str] = {
        "rpc.system": "grpc",
        "rpc.service": service,
        "rpc.method": name,
    }
    if order_id:
        attributes["order.id"] = order_id
    traced = not method.startswith(_UNTRACED)
    parent = propagate.extract(dict(context.invocation_metadata() or ())) if traced else None
    with (
        tracer.start_as_current_span(
            method,
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        if traced
        else trace.use_span(trace.INVALID_SPAN)
    ) as span:
        log_context = {"order_id": order_id} if order_id else {}
        try:
            with structlog.contextvars.bound_contextvars(**log_context):
                yield outcome
        finally:
            code = outcome.code or grpc.StatusCode.OK
            RPC_HANDLED.labels(service, name, code.name).inc()
            RPC_SECONDS.labels(service, name).observe(time.perf_counter() - started)
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if outcome.reason:
                span.set_attribute("error.reason", outcome.reason)
            if code in _SERVER_FAULTS:
                span.set_status(Status(StatusCode.ERROR, code.name))


@asynccontextmanager
async def _answered(
    method: str, context: grpc.aio.ServicerContext, outcome: _Outcome
) -> AsyncIterator[None]:
    """Turns whatever a handler raises into the status the caller gets, and notes it."""
    try:
        yield
    except Error as error:
        outcome.code, outcome.reason = error.code, error.reason.value
        await _abort(context, error)
    except asyncio.CancelledError:
        outcome.code = grpc.StatusCode.CANCELLED
        raise
    except grpc.aio.AbortError:
        outcome.code = _code_of(context)
        raise
    except Exception as exc:
        outcome.code, outcome.reason = grpc.StatusCode.INTERNAL, "INTERNAL"
        trace.get_current_span().record_exception(exc)
        await _abort(context, _unexpected(method, exc))


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """Traces, counts and logs every call; maps domain errors to rich statuses.

    Never leaks a traceback to a caller.
    """

    def __init__(self, order_id_of: OrderIdOf = order_id_field) -> None:
        self._order_id_of = order_id_of

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        order_id_of = self._order_id_of
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with _observed(method, request, context, order_id_of) as outcome:
                    async with _answered(method, context, outcome):
                        return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with _observed(method, request, context, order_id_of) as outcome:
                    async with _answered(method, context, outcome):
                        async for item in inner_stream(request, context):
                            yield item

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


def create_server(
    address: str,
    *,
    service_names: Iterable[str],
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
    order_id_of: OrderIdOf = order_id_field,
) -> tuple[grpc.aio.Server, int, health.HealthServicer]:
    """Builds a server bound to `address` (port 0 picks a free one).

    Returns the server, the port it is bound to and its health servicer, whose
    services are marked SERVING once the server has started. The caller adds
    its servicers before starting it. `order_id_of` tells which order a request
    is about (default: its `order_id` field), for spans and log lines.
    """
    server = grpc.aio.server(interceptors=[ServiceInterceptor(order_id_of), *interceptors])
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind {address}")
    return server, port, health_servicer


async def mark_serving(health_servicer: health.HealthServicer, names: Iterable[str]) -> None:
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def serve_until_signalled(
    server: grpc.aio.Server,
    health_servicer: health.HealthServicer,
    names: Iterable[str],
    *,
    grace: float,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Starts the server, reports SERVING, and stops gracefully on SIGTERM/SIGINT.

    On a signal, health turns NOT_SERVING first so load balancers stop sending
    work, then calls in flight get `grace` seconds to finish.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    names = list(names)
    await mark_serving(health_servicer, names)
    await stop.wait()
    log.info("stopping", grace_seconds=grace)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace)
    if on_stop is not None:
        await on_stop()
    log.info("stopped")
