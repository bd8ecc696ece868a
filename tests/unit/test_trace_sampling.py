"""Which incoming calls start a trace."""

from __future__ import annotations

import random

from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind

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
