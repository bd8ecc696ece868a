"""Which incoming calls start a trace."""

from __future__ import annotations

import random

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from server.core.telemetry import _EntryPoints

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
