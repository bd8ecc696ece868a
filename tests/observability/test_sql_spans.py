"""Queries become spans only under a call that is recorded (server/core/telemetry.py)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation import asyncpg as instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from server.core.telemetry import _SampledQueries


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = _SampledQueries()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield provider, exporter
    finally:
        instrumentor.uninstrument()


async def test_only_the_queries_of_a_recorded_call_become_spans(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, exporter = spans
    hydrated = []
    hydrate = instrumentation._hydrate_span_from_args

    def counted(*args: object, **kwargs: object) -> object:
        hydrated.append(args[1])
        return hydrate(*args, **kwargs)

    monkeypatch.setattr(instrumentation, "_hydrate_span_from_args", counted)
    unsampled = NonRecordingSpan(
        SpanContext(trace_id=1, span_id=2, is_remote=True, trace_flags=TraceFlags(0))
    )
    conn = await asyncpg.connect(database_url)
    try:
        with provider.get_tracer("test").start_as_current_span("GetOrder", kind=SpanKind.SERVER):
            assert await conn.fetchval("SELECT 1") == 1
        with trace.use_span(unsampled):
            assert await conn.fetchval("SELECT 2") == 2
        assert await conn.fetchval("SELECT 3") == 3  # outside any call
    finally:
        await conn.close()

    recorded = {s.name: s for s in exporter.get_finished_spans()}
    assert set(recorded) == {"GetOrder", "SELECT"}
    assert recorded["SELECT"].parent is not None
    assert recorded["SELECT"].parent.span_id == recorded["GetOrder"].context.span_id
    # The queries not recorded cost the instrumentation nothing.
    assert hydrated == ["SELECT 1"]
