"""gRPC channels to the platform's services, with the options every caller wants."""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

# No transparent retries: callers inside the platform retry through Temporal's
# retry policies, with backoff and a record in the workflow history.
_OPTIONS = [
    ("grpc.enable_retries", 0),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


def insecure_channel(
    target: str, *, interceptors: list[grpc.aio.ClientInterceptor] | None = None
) -> grpc.aio.Channel:
    """An asyncio channel to `target` ("host:port") without TLS.

    Each call gets a client span, and the current trace context travels in its
    metadata (W3C `traceparent`), so the server's span joins the caller's trace.
    Without a tracer provider configured in the process, both are no-ops.
    """
    return grpc.aio.insecure_channel(
        target,
        options=_OPTIONS,
        interceptors=[*aio_client_interceptors(), *(interceptors or [])],
    )
