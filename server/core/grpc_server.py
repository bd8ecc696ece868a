"""The gRPC server every service runs: health, reflection, errors, telemetry, shutdown.

`create_server` builds a grpc.aio server with the standard health service,
server reflection where wanted (so `grpcurl list` and `describe` work), TLS
when given credentials, and one interceptor around every handler that

* lets a method refuse a call before anything else is done for it, when the
  service is too busy to take any such call whoever sends it (see
  `refused_early_by`): shedding load must cost as little as possible;
* checks who is calling and whether the per-method table lets them
  (server/core/auth), before anything else: UNAUTHENTICATED or
  PERMISSION_DENIED otherwise, and the handler finds the caller in
  `server.core.auth.caller()`. A refused call is counted and seldom logged,
  and has no span (server/core/refusals.py);
* parses the request itself, so that bytes which are not a valid message
  (invalid UTF-8, truncated, garbage) are INVALID_ARGUMENT with the project's
  ErrorInfo instead of grpc's bare UNKNOWN;
* continues the caller's trace (W3C `traceparent` in the metadata) in a server
  span, so the handler's own calls and queries become its children;
* counts the call and times it (server/core/metrics.py), by status code;
* binds `order_id` (when the request names an order) to the log context, so
  every log line the handler writes carries it beside the trace id; it is the
  caller's, so it is clipped first (server/core/clip.py);
* turns `clients.errors.Error` into a `google.rpc.Status` with ErrorInfo; the
  database being away into UNAVAILABLE (DEPENDENCY_UNAVAILABLE); text the
  database cannot store into INVALID_ARGUMENT naming the field; anything else
  into INTERNAL with a generic message. The ErrorInfo metadata carries the
  `trace_id`, to find the server's side of it, and every retryable error a
  `google.rpc.RetryInfo`. However much of the caller's input an error echoes,
  its status is bounded to fit in the trailers (server/core/error_status.py).

A method marked `answers_serialized` returns its response's bytes, which are
sent as they are.

The interceptor runs for every call, so what can be worked out once per method
(metric series, span attributes, the parser, who may call it, the wrapped
handler) is.

`serve` runs the server until SIGTERM or SIGINT, then stops gracefully.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import Token
from typing import Any, NoReturn

import grpc
import structlog
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

from clients.errors import Error, FieldViolation, Reason, invalid
from server.core import process
from server.core.auth.guard import Guard
from server.core.auth.identity import calling_as, restore
from server.core.auth.policy import access_for
from server.core.clip import clip
from server.core.database import bad_text, unavailable
from server.core.error_status import status_of
from server.core.metrics import RPC_HANDLED, RPC_SECONDS, RPC_STARTED
from server.core.refusals import Refusals
from server.core.telemetry import (
    chosen_trace_id,
    current_trace_id,
    entry_decision,
    unrecorded_span,
)

log = structlog.get_logger(__name__)

OrderIdOf = Callable[[Any], str]
Parse = Callable[[bytes], Any]
EarlyRefusal = Callable[[], Error | None]
_EARLY_REFUSAL = "refused_early_by"
_SERIALIZED = "answers_serialized"

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
# Metadata keys that carry a trace context; without them there is nothing to extract.
_PROPAGATED = frozenset({"traceparent", "baggage"})
# A call without a caller's trace starts a trace of its own, whatever span is current.
_NO_PARENT = otel_context.Context()
# Callers that use clients/channels.py ping every 30 s while a call is open (a
# quiet WatchOrder, say); by default a server sends GOAWAY "too many pings" to
# pings more often than every 5 minutes (or to any while no call is open, as
# when a call ends as a ping is sent), failing every call on that connection.
_SERVER_OPTIONS = [
    ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
]
# How long a caller should wait before retrying a retryable error.
RETRY_DELAY_SECONDS = 1.0


def order_id_field(request: Any) -> str:
    """The request's `order_id` field, if it has one."""
    value = getattr(request, "order_id", "")
    return value if isinstance(value, str) else ""


def fields_holding(request: Message, character: str, prefix: str = "") -> Iterator[str]:
    """Paths (`line_items[0].sku`) of the request's text fields that contain `character`."""
    for field, value in request.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, Message):
                    yield from fields_holding(item, character, f"{path}[{key!r}].")
                elif (isinstance(key, str) and character in key) or (
                    isinstance(item, str) and character in item
                ):
                    yield f"{path}[{key!r}]"
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                for i, item in enumerate(value):
                    yield from fields_holding(item, character, f"{path}[{i}].")
            else:
                yield from fields_holding(value, character, f"{path}.")
        elif field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                yield from (f"{path}[{i}]" for i, item in enumerate(value) if character in item)
            elif character in value:
                yield path


def refused_early_by(
    check: Callable[[Any], Error | None],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a servicer method whose calls `check(servicer)` may refuse first of all.

    The check runs before the caller is authenticated, the request parsed or
    a span started, so it must not depend on who calls or what they send:
    it says whether the service takes any such call now (the platform is
    full, say). Its refusal is answered as the handler's would be.
    """

    def mark(method: Callable[..., Any]) -> Callable[..., Any]:
        setattr(method, _EARLY_REFUSAL, check)
        return method

    return mark


def answers_serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a unary servicer method that returns its response already serialized.

    The interceptor then has grpc send the bytes the method returns as they
    are, instead of serializing a message; everything else about the call is
    as for any method. For an answer cheaper to frame from bytes at hand than
    to build as a message (OrderService.ListOrders, server/orders/listing.py), or
    kept serialized (OrderService.GetOrder's cached orders, server/orders/reads.py).
    """
    setattr(method, _SERIALIZED, True)
    return method


def _early_refusal(handler: Callable[..., Any]) -> EarlyRefusal | None:
    """The early check of a handler marked by `refused_early_by`, bound to its servicer."""
    check = getattr(handler, _EARLY_REFUSAL, None)
    servicer = getattr(handler, "__self__", None)
    if check is None or servicer is None:
        return None
    return functools.partial(check, servicer)


def parser(deserializer: Callable[[bytes], Any] | None) -> Parse:
    """Parses request bytes as grpc would, but fails with the project's INVALID_ARGUMENT."""
    if deserializer is None:
        return lambda raw: raw
    message_type = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_type, "DESCRIPTOR", None)
    what = f"a valid {descriptor.full_name} message" if descriptor else "a valid request"

    def parse(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception:
            raise Error(Reason.INVALID_ARGUMENT, f"the request is not {what}") from None

    return parse


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


class _Rpc:
    """One method as the interceptor sees it: what each of its calls needs, made once."""

    def __init__(
        self,
        method: str,
        parse: Parse,
        order_id_of: OrderIdOf,
        guard: Guard,
        early_refusal: EarlyRefusal | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        service, _, name = method.lstrip("/").partition("/")
        self.method = method
        self.early_refusal = early_refusal
        self.parse = parse
        self.order_id_of = order_id_of
        self.guard = guard
        self.access = access_for(method)
        self.traced = not method.startswith(_UNTRACED)
        self.tracer = tracer or trace.get_tracer(__name__)
        # Whether a call without a caller's trace starts one (telemetry.py).
        self.starts_trace = entry_decision(self.tracer, method)
        self.attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        self.started = RPC_STARTED.labels(service, name)
        self.seconds = RPC_SECONDS.labels(service, name)
        self.refusals = Refusals(method)
        self._labels = (service, name)
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        """The grpc_server_handled_total series of this method and `code`."""
        series = self._handled.get(code)
        if series is None:
            series = self._handled[code] = RPC_HANDLED.labels(*self._labels, code.name)
        return series

    def error_for(self, exc: Exception, request: Any) -> Error:
        """What the caller is told about an exception a call raised."""
        if isinstance(exc, Error):
            return exc
        if bad_text(exc) and isinstance(request, Message):
            fields = list(fields_holding(request, "\x00"))
            if fields:
                return invalid([FieldViolation(f, "must not contain U+0000 (NUL)") for f in fields])
        if unavailable(exc):
            log.warning("dependency unavailable", method=self.method, error=repr(exc))
            return Error(Reason.DEPENDENCY_UNAVAILABLE, "a dependency is unavailable; retry")
        log.exception("unexpected error in handler", method=self.method, exc_info=exc)
        return Error(Reason.INTERNAL, "internal error; the server log has the details")


class _Call:
    """One call in flight: its timer, span, log context and outcome."""

    __slots__ = (
        "_caller",
        "_log_tokens",
        "_span",
        "_started",
        "_token",
        "code",
        "context",
        "reason",
        "rpc",
    )

    def __init__(self, rpc: _Rpc, context: grpc.aio.ServicerContext) -> None:
        self.rpc = rpc
        self.context = context
        self.code = grpc.StatusCode.OK
        self.reason: str | None = None
        self._log_tokens: Any = None
        self._caller: object = None
        self._span: trace.Span | None = None
        self._token: Token[otel_context.Context] | None = None
        self._started = time.perf_counter()
        rpc.started.inc()

    def admit(self) -> None:
        """Lets the call in if the table allows its caller (raises the refusal if not).

        Only an admitted call is traced: anyone may send calls without
        credentials, as fast as they like, and a refusal costs a counter and a
        log line now and then (server/core/refusals.py), not a span each.
        """
        rpc = self.rpc
        if rpc.early_refusal is not None:
            refusal = rpc.early_refusal()
            if refusal is not None:
                raise refusal
        # grpc builds the metadata anew on every ask: asked once, read twice.
        metadata = self.context.invocation_metadata() or ()
        try:
            identity = rpc.guard.check(rpc.method, rpc.access, self.context, metadata)
        except Error as refused:
            rpc.refusals.note(refused)
            raise
        self._caller = calling_as(identity)
        if rpc.traced:
            self._trace(metadata)

    def _trace(self, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        """Starts the call's server span, continuing the caller's trace if it sent one.

        A read that starts no trace gets no span (server/core/telemetry.py).
        """
        rpc = self.rpc
        trace_id = None
        for key, _ in metadata:
            if key in _PROPAGATED:
                parent = propagate.extract(dict(metadata))
                break
        else:
            parent = _NO_PARENT
            if rpc.starts_trace is not None:
                trace_id = rpc.starts_trace()
                if trace_id == trace.INVALID_TRACE_ID:
                    return
        with chosen_trace_id(trace_id):
            self._span = rpc.tracer.start_span(
                rpc.method, context=parent, kind=trace.SpanKind.SERVER, attributes=rpc.attributes
            )
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def bind(self, request: Any) -> None:
        """Names the order the call is about on its span and its log lines."""
        # Clipped here, where it enters both: the request has not been
        # checked yet, and its order_id may be megabytes long.
        order_id = clip(self.rpc.order_id_of(request))
        if order_id:
            if self._span is not None:
                self._span.set_attribute("order.id", order_id)
            self._log_tokens = structlog.contextvars.bind_contextvars(order_id=order_id)

    async def fail(self, exc: BaseException, request: Any) -> NoReturn:
        """Answers the caller for an exception the call raised, and notes the outcome."""
        if isinstance(exc, asyncio.CancelledError):
            self.code = grpc.StatusCode.CANCELLED
            raise exc
        if isinstance(exc, grpc.aio.AbortError):  # the handler aborted by itself
            self.code = _code_of(self.context)
            raise exc
        if not isinstance(exc, Exception):
            raise exc
        if self._span is None and self._caller is not None and self.rpc.traced:
            # An admitted read that started no trace: ids now, for its error
            # and its log line. A refusal at the door gets none, as before.
            self._span = unrecorded_span()
            self._token = otel_context.attach(trace.set_span_in_context(self._span))
        error = self.rpc.error_for(exc, request)
        self.code, self.reason = error.code, error.reason.value
        if error.reason is Reason.INTERNAL and self._span is not None:
            self._span.record_exception(exc)
        trace_id = current_trace_id()
        if trace_id:
            error = dataclasses.replace(error, metadata={**error.metadata, "trace_id": trace_id})
        # A delay passed on from further down (a breaker's cool-down) wins.
        # A refusal that says when to come back (admission control) keeps its
        # delay whatever its code; other retryable errors get the default.
        delay = error.retry_delay
        if delay is None and error.reason.retryable:
            delay = RETRY_DELAY_SECONDS
        status = status_of(error, retry_delay=delay)
        await self.context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("abort_with_status returned")  # it always raises

    def end(self, *, in_call_context: bool = True) -> None:
        """Counts and closes the call; undoes what it set in its context when still in it."""
        rpc, code = self.rpc, self.code
        rpc.handled(code).inc()
        rpc.seconds.observe(time.perf_counter() - self._started)
        span = self._span
        if span is not None:
            if self.reason:
                span.set_attributes(
                    {"rpc.grpc.status_code": code.value[0], "error.reason": self.reason}
                )
            else:
                span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code in _SERVER_FAULTS:
                span.set_status(Status(StatusCode.ERROR, code.name))
            span.end()
        if not in_call_context:
            return
        if self._log_tokens is not None:
            structlog.contextvars.reset_contextvars(**self._log_tokens)
        if self._caller is not None:
            restore(self._caller)
        if self._token is not None:
            otel_context.detach(self._token)


def _unary(rpc: _Rpc, inner: Callable[[Any, Any], Awaitable[Any]]) -> Callable[..., Any]:
    async def unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        call = _Call(rpc, context)
        request = None
        try:
            call.admit()
            request = rpc.parse(raw)
            call.bind(request)
            return await inner(request, context)
        except BaseException as exc:
            await call.fail(exc, request)
        finally:
            call.end()

    return unary


def _unary_stream(rpc: _Rpc, inner: Callable[[Any, Any], AsyncIterator[Any]]) -> Callable[..., Any]:
    async def stream(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call = _Call(rpc, context)
        request = None
        closed = False
        try:
            call.admit()
            request = rpc.parse(raw)
            call.bind(request)
            async for item in inner(request, context):
                yield item
        except GeneratorExit:
            # The caller went away and grpc dropped the stream: it is closed
            # when collected, from whatever task and context that happens in,
            # where what this call set is not in force (nor to be reset).
            call.code, closed = grpc.StatusCode.CANCELLED, True
            raise
        except BaseException as exc:
            await call.fail(exc, request)
        finally:
            call.end(in_call_context=not closed)

    return stream


async def _admitted(
    method: str, guard: Guard, refusals: Refusals, context: grpc.aio.ServicerContext
) -> object:
    """Checks a call from a caller's stream against the table; the caller's token to restore."""
    try:
        identity = guard.check(method, access_for(method), context)
    except Error as refused:
        refusals.note(refused)
        await context.abort_with_status(rpc_status.to_status(status_of(refused)))
    return calling_as(identity)


def _guarded_stream(
    method: str, guard: Guard, inner: Callable[[Any, Any], AsyncIterator[Any]]
) -> Callable[..., Any]:
    """A stream from the caller (reflection): checked against the table, nothing more."""
    refusals = Refusals(method)

    async def stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        token = await _admitted(method, guard, refusals, context)
        closed = False
        try:
            async for item in inner(requests, context):
                yield item
        except GeneratorExit:
            closed = True  # see _unary_stream
            raise
        finally:
            if not closed:
                restore(token)

    return stream


def _guarded_unary(
    method: str, guard: Guard, inner: Callable[[Any, Any], Awaitable[Any]]
) -> Callable[..., Any]:
    """A caller's stream with one answer (the platform has none): checked, nothing more."""
    refusals = Refusals(method)

    async def unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        token = await _admitted(method, guard, refusals, context)
        try:
            return await inner(requests, context)
        finally:
            restore(token)

    return unary


def observed(
    method: str, handler: grpc.RpcMethodHandler, order_id_of: OrderIdOf, guard: Guard
) -> grpc.RpcMethodHandler:
    """The handler wrapped in what ServiceInterceptor adds; caller streams are only guarded."""
    if handler.unary_unary:
        rpc = _Rpc(
            method,
            parser(handler.request_deserializer),
            order_id_of,
            guard,
            _early_refusal(handler.unary_unary),
        )
        # Without a serializer, grpc sends the bytes a handler returns as they are.
        serialized = getattr(handler.unary_unary, _SERIALIZED, False)
        return grpc.unary_unary_rpc_method_handler(
            _unary(rpc, handler.unary_unary),
            None,
            None if serialized else handler.response_serializer,
        )
    if handler.unary_stream:
        rpc = _Rpc(method, parser(handler.request_deserializer), order_id_of, guard)
        # grpc tells the two kinds of server stream apart by the handler's kind:
        # an async generator yields its messages, a coroutine writes them with
        # context.write (the standard health servicer's Watch). The wrapper keeps the kind.
        if inspect.iscoroutinefunction(handler.unary_stream):
            return grpc.unary_stream_rpc_method_handler(
                _unary(rpc, handler.unary_stream), None, handler.response_serializer
            )
        return grpc.unary_stream_rpc_method_handler(
            _unary_stream(rpc, handler.unary_stream), None, handler.response_serializer
        )
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            _guarded_stream(method, guard, handler.stream_stream),
            handler.request_deserializer,
            handler.response_serializer,
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _guarded_unary(method, guard, handler.stream_unary),
            handler.request_deserializer,
            handler.response_serializer,
        )
    return handler


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """Traces, counts and logs every call; maps errors to rich statuses.

    Never leaks a traceback to a caller. A method's wrapped handler is built on
    its first call and reused; `reuse_handlers=False` asks the next
    interceptors for every call instead (needed when there are any). `guard`
    decides who may call what; without one, everyone may call everything.
    """

    def __init__(
        self,
        order_id_of: OrderIdOf = order_id_field,
        *,
        guard: Guard | None = None,
        reuse_handlers: bool = True,
    ) -> None:
        self._order_id_of = order_id_of
        self._guard = guard or Guard.off()
        self._reuse = reuse_handlers
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        wrapped = self._handlers.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(details)
        if handler is None:  # an unknown method: grpc answers UNIMPLEMENTED
            return handler
        wrapped = observed(method, handler, self._order_id_of, self._guard)
        if self._reuse:
            self._handlers[method] = wrapped
        return wrapped


class _GenericOnlyServer(grpc.aio.Server):
    """A grpc.aio server that finds every method through its service's generic handler.

    A generated `add_*Servicer_to_server` adds its service both ways: a
    generic handler, and each method registered on its own. grpc.aio then
    waits for the next call of every registered method on a future of its
    own, and for each call it accepts it waits on all of them again (one
    `asyncio.wait` over them all): a cost on every call that grows with the
    methods registered, 22 on the front door. The generic handlers find the
    same handlers, and one future waits for a call to any of them.
    """

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]
    ) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        """Not registered: the generic handler added with them serves these methods."""

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._server.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float | None) -> None:
        await self._server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 grpc's signature
        return await self._server.wait_for_termination(timeout)


def create_server(
    address: str,
    *,
    service_names: Iterable[str],
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
    order_id_of: OrderIdOf = order_id_field,
    guard: Guard | None = None,
    credentials: grpc.ServerCredentials | None = None,
    reflection_on: bool = True,
) -> tuple[grpc.aio.Server, int, health.HealthServicer]:
    """Builds a server bound to `address` (port 0 picks a free one).

    Returns the server, the port it is bound to and its health servicer, whose
    services are marked SERVING once the server has started. The caller adds
    its servicers before starting it. `order_id_of` tells which order a request
    is about (default: its `order_id` field), for spans and log lines. `guard`
    checks every call against the per-method table (none: no checks);
    `credentials` serve TLS (none: plaintext).
    """
    extra = list(interceptors)
    first = ServiceInterceptor(order_id_of, guard=guard, reuse_handlers=not extra)
    server = _GenericOnlyServer(
        grpc.aio.server(interceptors=[first, *extra], options=_SERVER_OPTIONS)
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    if reflection_on:
        reflection.enable_server_reflection(
            [
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
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
    on_serving: Callable[[], None] | None = None,
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
    if on_serving is not None:
        on_serving()
    process.started()
    await stop.wait()
    log.info("stopping", grace_seconds=grace)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace)
    if on_stop is not None:
        await on_stop()
    log.info("stopped")
