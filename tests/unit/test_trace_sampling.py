"""Which incoming calls start a trace."""

from __future__ import annotations

import random
from typing import Any

import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import INVALID_TRACE_ID, SpanKind, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clients.errors import Error, Reason
from server.core.auth import Guard
from server.core.grpc_server import _Call, _Rpc, order_id_field, parser
from server.core.settings import Settings
from server.core.telemetry import _EntryPoints, current_trace_id, entry_trace_id, tracer_provider

GET_ORDER = "/orders.v1.OrderService/GetOrder"
CREATE_ORDER = "/orders.v1.OrderService/CreateOrder"


def sampled(sampler: _EntryPoints, name: str, trace_id: int, kind: SpanKind) -> bool:
    result = sampler.should_sample(None, trace_id, name, kind)
    return result.decision is Decision.RECORD_AND_SAMPLE


def test_every_write_starts_a_trace_and_a_share_of_reads_does() -> None:
    sampler = _EntryPoints(reads_ratio=0.1)
    ids = [random.getrandbits(128) for _ in range(5000)]

    reads = sum(sampled(sampler, GET_ORDER, i, SpanKind.SERVER) for i in ids)
    writes = sum(sampled(sampler, CREATE_ORDER, i, SpanKind.SERVER) for i in ids)

    assert writes == len(ids)
    assert 300 < reads < 700  # about one in ten


def test_reads_are_all_traced_at_ratio_one_and_none_at_zero() -> None:
    ids = [random.getrandbits(128) for _ in range(200)]
    assert all(sampled(_EntryPoints(1.0), GET_ORDER, i, SpanKind.SERVER) for i in ids)
    assert not any(sampled(_EntryPoints(0.0), GET_ORDER, i, SpanKind.SERVER) for i in ids)


def test_nothing_but_an_incoming_call_starts_a_trace() -> None:
    assert not sampled(_EntryPoints(), CREATE_ORDER, 1, SpanKind.CLIENT)
    assert not sampled(_EntryPoints(), CREATE_ORDER, 1, SpanKind.INTERNAL)


def test_a_share_of_writes_starts_a_trace_at_a_lower_ratio() -> None:
    sampler = _EntryPoints(reads_ratio=0.0, writes_ratio=0.1)
    ids = [random.getrandbits(128) for _ in range(5000)]

    writes = sum(sampled(sampler, CREATE_ORDER, i, SpanKind.SERVER) for i in ids)

    assert 300 < writes < 700  # about one in ten
    assert not any(sampled(sampler, GET_ORDER, i, SpanKind.SERVER) for i in ids)


def test_an_order_not_sampled_is_not_recorded_in_any_process_but_keeps_its_ids() -> None:
    """The saga's spans follow the CreateOrder's decision, which travels in `traceparent`."""

    def provider() -> TracerProvider:
        return TracerProvider(sampler=ParentBased(root=_EntryPoints(writes_ratio=0.0)))

    front_door, worker = provider().get_tracer("orders"), provider().get_tracer("worker")
    carrier: dict[str, str] = {}
    with front_door.start_as_current_span(CREATE_ORDER, kind=SpanKind.SERVER) as call:
        TraceContextTextMapPropagator().inject(carrier)
    parent = TraceContextTextMapPropagator().extract(carrier)
    with worker.start_as_current_span("RunActivity:charge", parent, kind=SpanKind.SERVER) as step:
        pass
    assert not call.is_recording() and not step.is_recording()
    trace_id = call.get_span_context().trace_id
    assert trace_id != 0 and step.get_span_context().trace_id == trace_id


def _tracer(reads_ratio: float, writes_ratio: float = 1.0) -> Tracer:
    settings = Settings(TRACE_READS_RATIO=reads_ratio, TRACE_WRITES_RATIO=writes_ratio)
    return tracer_provider("orders", settings).get_tracer("test")


def test_a_read_is_decided_before_its_span_and_a_write_always_gets_an_id() -> None:
    tenth, none = _tracer(0.1), _tracer(0.1, writes_ratio=0.0)
    reads = [entry_trace_id(tenth, GET_ORDER) for _ in range(5000)]
    writes = [entry_trace_id(none, CREATE_ORDER) for _ in range(500)]

    started = [trace_id for trace_id in reads if trace_id != INVALID_TRACE_ID]
    assert 300 < len(started) < 700  # about one in ten
    assert all(trace_id != INVALID_TRACE_ID for trace_id in writes)  # its ids still travel
    # A tracer that is not the platform's (tests, tools) leaves it to the span.
    assert entry_trace_id(TracerProvider().get_tracer("other"), GET_ORDER) is None


class _Context:
    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("user-agent", "test"),)


def _call(method: str, tracer: Tracer) -> _Call:
    rpc = _Rpc(method, parser(None), order_id_field, Guard.off(), tracer=tracer)
    return _Call(rpc, _Context())  # type: ignore[arg-type]


def test_a_read_that_starts_no_trace_makes_no_span() -> None:
    call = _call(GET_ORDER, _tracer(0.0))
    call.admit()
    try:
        assert not get_current_span().get_span_context().is_valid
        assert current_trace_id() is None
    finally:
        call.end()


def test_a_read_that_starts_a_trace_records_it_under_the_id_decided() -> None:
    exporter = InMemorySpanExporter()
    settings = Settings(TRACE_READS_RATIO=1.0)
    provider = tracer_provider("orders", settings)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call = _call(GET_ORDER, provider.get_tracer("test"))
    call.admit()
    try:
        span = get_current_span()
        assert span.is_recording()
        trace_id = span.get_span_context().trace_id
    finally:
        call.end()
    (finished,) = exporter.get_finished_spans()
    assert finished.name == GET_ORDER and finished.context.trace_id == trace_id


def test_a_write_that_starts_no_trace_still_carries_ids() -> None:
    call = _call(CREATE_ORDER, _tracer(1.0, writes_ratio=0.0))
    call.admit()
    try:
        span = get_current_span()
        assert not span.is_recording()
        assert span.get_span_context().is_valid
    finally:
        call.end()


class _Aborted(Exception):
    pass


class _FailingContext(_Context):
    def __init__(self) -> None:
        self.status: Any = None

    async def abort_with_status(self, status: Any) -> None:
        self.status = status
        raise _Aborted


def _error_info(status: Any) -> error_details_pb2.ErrorInfo:
    (details,) = [value for key, value in status.trailing_metadata if key.endswith("-bin")]
    for detail in status_pb2.Status.FromString(details).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError("no ErrorInfo in the status")


async def test_a_read_that_started_no_trace_gets_ids_when_it_fails() -> None:
    rpc = _Rpc(GET_ORDER, parser(None), order_id_field, Guard.off(), tracer=_tracer(0.0))
    context = _FailingContext()
    call = _Call(rpc, context)  # type: ignore[arg-type]
    call.admit()
    assert current_trace_id() is None
    try:
        with pytest.raises(_Aborted):
            await call.fail(Error(Reason.ORDER_NOT_FOUND, "no order ord_1"), None)
        trace_id = current_trace_id()
    finally:
        call.end()

    assert trace_id is not None
    assert _error_info(context.status).metadata["trace_id"] == trace_id
    assert current_trace_id() is None  # nothing left behind in the caller's context
