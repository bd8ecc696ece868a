"""The gRPC server every service runs: health, reflection, errors, shutdown.

`create_server` builds a grpc.aio server with the standard health service and
server reflection (so `grpcurl list` and `describe` work), and an interceptor
that turns `clients.errors.Error` into a `google.rpc.Status` with ErrorInfo,
and anything unexpected into INTERNAL with a generic message. `serve` runs it
until SIGTERM or SIGINT, then stops gracefully.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from clients.errors import Error, Reason

log = structlog.get_logger(__name__)


async def _abort(context: grpc.aio.ServicerContext, error: Error) -> None:
    await context.abort_with_status(rpc_status.to_status(error.to_status()))


def _unexpected(method: str, exc: BaseException) -> Error:
    log.exception("unexpected error in handler", method=method, exc_info=exc)
    return Error(Reason.INTERNAL, "internal error; the server log has the details")


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps domain errors to rich statuses; never leaks a traceback to a caller."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await inner(request, context)
                except Error as error:
                    await _abort(context, error)
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:
                    await _abort(context, _unexpected(method, exc))

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except Error as error:
                    await _abort(context, error)
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:
                    await _abort(context, _unexpected(method, exc))

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


def create_server(
    address: str,
    *,
    service_names: Iterable[str],
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, int, health.HealthServicer]:
    """Builds a server bound to `address` (port 0 picks a free one).

    Returns the server, the port it is bound to and its health servicer, whose
    services are marked SERVING once the server has started. The caller adds
    its servicers before starting it.
    """
    server = grpc.aio.server(interceptors=[*interceptors, ErrorInterceptor()])
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
