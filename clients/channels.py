"""gRPC channels to the platform's services, with the options and credentials every caller wants."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.propagate import inject
from opentelemetry.propagators.textmap import Setter

# No transparent retries: callers inside the platform retry through Temporal's
# retry policies, with backoff and a record in the workflow history.
_OPTIONS = [
    ("grpc.enable_retries", 0),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # A service back after an outage is called again within seconds, not
    # after gRPC's default reconnect backoff of up to two minutes.
    ("grpc.max_reconnect_backoff_ms", 5_000),
]

# Calls spread over every address the target resolves to (several listed
# addresses, or a DNS name with several records: behind a headless Kubernetes
# Service, every pod), skipping instances that are down; with one address this
# is the same as gRPC's default.
_ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def channel_target(address: str) -> tuple[str, list[tuple[str, Any]]]:
    """The gRPC target of `address`, and the channel options it needs.

    `address` is "host:port", any gRPC target ("dns:///payments.internal:50052"),
    or several "ip:port" separated by commas, one per instance of a service:
    those become one `ipv4:` (or `ipv6:`) target that round_robin balances
    over. gRPC resolves no list of host names, so a list names IP addresses;
    instances behind one DNS name are given as that name.
    """
    options: list[tuple[str, Any]] = [("grpc.service_config", _ROUND_ROBIN)]
    parts = [part.strip() for part in address.split(",") if part.strip()]
    if len(parts) < 2:
        return address.strip(), options
    families = {_ip_family(part) for part in parts}
    if len(families) != 1:
        raise ValueError(f"{address!r}: list IPv4 or IPv6 addresses, not both")
    # TLS checks each instance's certificate against the first address's host.
    options.append(("grpc.default_authority", parts[0]))
    return f"{families.pop()}:{','.join(parts)}", options


def _ip_family(part: str) -> str:
    host, _, port = part.rpartition(":")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(
            f"{part!r}: a list of addresses names IP addresses (ip:port); "
            "give instances behind a host name as that one name"
        ) from None
    if not port.isdigit():
        raise ValueError(f"{part!r}: no port")
    return f"ipv{ip.version}"


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


class _SpanForSampledCalls(grpc.aio.UnaryUnaryClientInterceptor):
    """OpenTelemetry's client span for a call in a sampled trace; its context alone otherwise.

    Under a parent-based sampler (OpenTelemetry's default, and the
    platform's), a call made inside a trace that is not sampled gets a span
    that records nothing, yet OpenTelemetry's interceptor still builds it and
    awaits the call's status to end it: about 15 µs of the caller's CPU per
    call, a third of what the interceptor costs (docs/performance.md, "A call
    in an unsampled trace makes no client span"). Such a call only needs the
    trace context in its metadata, so that the server's log lines carry the
    trace id. A call outside any trace goes through the interceptor as before
    (the sampler decides for it).
    """

    def __init__(self, traced: grpc.aio.UnaryUnaryClientInterceptor) -> None:
        self._traced = traced

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid or context.trace_flags.sampled:
            return await self._traced.intercept_unary_unary(
                continuation, client_call_details, request
            )
        if not is_instrumentation_enabled():
            return await continuation(client_call_details, request)
        return await continuation(_with_trace_context(client_call_details), request)


def _with_trace_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    inject(metadata, setter=_METADATA_SETTER)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _MetadataSetter(Setter[grpc.aio.Metadata]):
    def set(self, carrier: grpc.aio.Metadata, key: str, value: str) -> None:
        carrier[key] = value


_METADATA_SETTER = _MetadataSetter()


def _traced_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """OpenTelemetry's client interceptors, a unary call outside a sampled trace spared its span."""
    return [
        _SpanForSampledCalls(interceptor)
        if isinstance(interceptor, grpc.aio.UnaryUnaryClientInterceptor)
        else interceptor
        for interceptor in aio_client_interceptors()
    ]


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
    """An asyncio channel to `target`, over TLS when the credentials say so.

    `target` is "host:port", or several "ip:port" separated by commas: calls
    are spread over them (`channel_target`).

    When `traced`, the current trace context travels in each call's metadata
    (W3C `traceparent`), so the server's span joins the caller's trace, and a
    call in a sampled trace (or in none: the sampler decides) gets a client
    span. Without a tracer provider configured in the process, both are
    no-ops.
    """
    credentials = credentials or CallerCredentials()
    chain: list[grpc.aio.ClientInterceptor] = [
        *(_traced_interceptors() if traced else ()),
        *interceptors,
    ]
    source = credentials.token
    if source is not None:
        chain.extend(authorizing(lambda _method: source()))
    target, balancing = channel_target(target)
    merged = [*_OPTIONS, *balancing, *options]
    if not credentials.tls:
        return grpc.aio.insecure_channel(target, options=merged, interceptors=chain)
    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=credentials.root_certificates,
        private_key=credentials.private_key,
        certificate_chain=credentials.certificate_chain,
    )
    return grpc.aio.secure_channel(target, channel_credentials, options=merged, interceptors=chain)
