"""gRPC channels to the platform's services, with the options and credentials every caller wants."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

# No transparent retries: callers inside the platform retry through Temporal's
# retry policies, with backoff and a record in the workflow history.
_OPTIONS = [
    ("grpc.enable_retries", 0),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # Spread calls over every address the name resolves to: behind a headless
    # Kubernetes Service that is every pod, not the one a connection landed on.
    ("grpc.lb_policy_name", "round_robin"),
]

# Gives the bearer token to send on a call: a fixed one, or a file's current content.
TokenSource = Callable[[], str]


class TokenFile:
    """A token kept in a file, re-read when the file changes (so it can be rotated)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    def __call__(self) -> str:
        status = os.stat(self._path)
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp != self._stamp:
            self._token = self._path.read_text().strip()
            self._stamp = stamp
        return self._token


# Compared by identity: two callers with equal fields may still hold different tokens.
@dataclass(frozen=True, eq=False)
class CallerCredentials:
    """How a caller proves who it is, and checks whom it talks to.

    With `tls`, servers are checked against `root_certificates` (the CA that
    signed their certificates; None: the system's CAs); `certificate_chain`
    and `private_key` are the caller's own certificate, for mutual TLS;
    `token` is sent as `authorization: Bearer`.
    """

    tls: bool = False
    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    token: TokenSource | None = None


class _Authorizing:
    """Adds `authorization: Bearer <token>` to a call's metadata."""

    def __init__(self, token: Callable[[str], str]) -> None:
        self._token = token

    def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        method = details.method
        token = self._token(method.decode() if isinstance(method, bytes) else method)
        if not token:
            return details
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata["authorization"] = f"Bearer {token}"
        return grpc.aio.ClientCallDetails(
            method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files each interceptor under one kind of call only: one class per kind.
class _UnaryAuthorizing(_Authorizing, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)


class _StreamAuthorizing(_Authorizing, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)


def authorizing(token: Callable[[str], str]) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that send `token(method)` as the bearer token of each call (none if empty)."""
    return [_UnaryAuthorizing(token), _StreamAuthorizing(token)]


def open_channel(
    target: str,
    credentials: CallerCredentials | None = None,
    *,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
    traced: bool = True,
) -> grpc.aio.Channel:
    """An asyncio channel to `target` ("host:port"), over TLS when the credentials say so.

    When `traced`, each call gets a client span, and the current trace context
    travels in its metadata (W3C `traceparent`), so the server's span joins the
    caller's trace. Without a tracer provider configured in the process, both
    are no-ops.
    """
    credentials = credentials or CallerCredentials()
    chain: list[grpc.aio.ClientInterceptor] = [
        *(aio_client_interceptors() if traced else ()),
        *interceptors,
    ]
    source = credentials.token
    if source is not None:
        chain.extend(authorizing(lambda _method: source()))
    merged = [*_OPTIONS, *options]
    if not credentials.tls:
        return grpc.aio.insecure_channel(target, options=merged, interceptors=chain)
    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=credentials.root_certificates,
        private_key=credentials.private_key,
        certificate_chain=credentials.certificate_chain,
    )
    return grpc.aio.secure_channel(target, channel_credentials, options=merged, interceptors=chain)
