"""SQL in traces: counted on the call's span, a span of its own when slow or failed.

server/core/sql_tracing.py, against the real Postgres.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry.instrumentation import asyncpg as instrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from pydantic import ValidationError

from server.core import sql_tracing
from server.core.settings import Settings
from server.core.sql_tracing import STATEMENTS, STATEMENTS_MS, StatementTracing

Traced = Callable[[float], tuple[TracerProvider, InMemorySpanExporter]]


@pytest.fixture
def traced() -> Iterator[Traced]:
    """Instruments asyncpg with a given threshold (ms), into spans kept in memory."""
    instrumentor = StatementTracing()

    def instrument(slow_ms: float) -> tuple[TracerProvider, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor.instrument(tracer_provider=provider, slow_ms=slow_ms)
        return provider, exporter

    try:
        yield instrument
    finally:
        instrumentor.uninstrument()


@pytest_asyncio.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


def _by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


async def test_only_the_statements_of_a_recorded_call_are_traced(
    traced: Traced, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, exporter = traced(0)
    hydrated = []
    hydrate = sql_tracing._hydrate_span_from_args

    def counted(*args: object, **kwargs: object) -> object:
        hydrated.append(args[1])
        return hydrate(*args, **kwargs)

    monkeypatch.setattr(sql_tracing, "_hydrate_span_from_args", counted)
    unsampled = NonRecordingSpan(
        SpanContext(trace_id=1, span_id=2, is_remote=True, trace_flags=TraceFlags(0))
    )
    with provider.get_tracer("test").start_as_current_span("GetOrder", kind=SpanKind.SERVER):
        assert await conn.fetchval("SELECT 1") == 1
    with trace.use_span(unsampled):
        assert await conn.fetchval("SELECT 2") == 2
    assert await conn.fetchval("SELECT 3") == 3  # outside any call

    recorded = _by_name(exporter)
    assert set(recorded) == {"GetOrder", "SELECT"}
    statement = recorded["SELECT"]
    assert statement.parent is not None
    assert statement.parent.span_id == recorded["GetOrder"].context.span_id
    assert statement.kind is SpanKind.CLIENT
    assert statement.attributes is not None
    assert statement.attributes["db.statement"] == "SELECT 1"
    assert statement.attributes["db.system"] == "postgresql"
    assert recorded["GetOrder"].attributes is not None
    assert recorded["GetOrder"].attributes[STATEMENTS] == 1
    # The statements not recorded cost the instrumentation nothing.
    assert hydrated == ["SELECT 1"]


async def test_fast_statements_are_counted_slow_and_failed_ones_are_spans(
    traced: Traced, conn: asyncpg.Connection
) -> None:
    provider, exporter = traced(30)
    with provider.get_tracer("test").start_as_current_span("Charge", kind=SpanKind.SERVER):
        assert await conn.fetchval("SELECT 1") == 1
        await conn.execute("SELECT pg_sleep(0.06)")
        with pytest.raises(asyncpg.DivisionByZeroError):
            await conn.fetchval("SELECT 1 / 0")

    spans = exporter.get_finished_spans()
    call = next(s for s in spans if s.name == "Charge")
    statements = [s for s in spans if s is not call]
    assert [s.attributes["db.statement"] for s in statements if s.attributes] == [
        "SELECT pg_sleep(0.06)",
        "SELECT 1 / 0",
    ]
    slow, failed = statements
    for statement in statements:
        assert statement.parent is not None
        assert statement.parent.span_id == call.context.span_id
    # The slow one's span has the times the statement took, not those of its making.
    assert slow.start_time is not None and slow.end_time is not None
    assert slow.end_time - slow.start_time >= 60_000_000
    assert slow.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "DivisionByZeroError"
    # All three counted on the call, fast or not.
    assert call.attributes is not None
    assert call.attributes[STATEMENTS] == 3
    assert float(call.attributes[STATEMENTS_MS]) >= 60  # type: ignore[arg-type]


async def test_a_cursors_end_is_no_failure(traced: Traced, conn: asyncpg.Connection) -> None:
    provider, exporter = traced(30)
    with provider.get_tracer("test").start_as_current_span("ListOrders", kind=SpanKind.SERVER):
        async with conn.transaction():
            rows = [row[0] async for row in conn.cursor("SELECT generate_series(1, 3)")]
    assert rows == [1, 2, 3]
    recorded = _by_name(exporter)
    assert set(recorded) == {"ListOrders"}, "a fast cursor's last fetch made a span"
    assert recorded["ListOrders"].attributes is not None
    assert int(recorded["ListOrders"].attributes[STATEMENTS]) >= 1  # type: ignore[arg-type]


async def test_the_instrumentation_is_asyncpgs_own_otherwise(
    traced: Traced, conn: asyncpg.Connection
) -> None:
    """Span names as OpenTelemetry's asyncpg instrumentation gives them."""
    provider, exporter = traced(0)
    with provider.get_tracer("test").start_as_current_span("Call", kind=SpanKind.SERVER):
        await conn.execute("/* a comment */ SELECT 1")
        statement = await conn.prepare("SELECT $1::int")
        assert await statement.fetchval(7) == 7
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["Call", "SELECT", "SELECT"]
    assert instrumentation.AsyncPGInstrumentor in type(StatementTracing()).__mro__


async def test_a_fault_in_tracing_leaves_the_statement_as_it_was(
    traced: Traced, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The span is made after the statement: its failing must not change the statement's outcome."""
    provider, exporter = traced(0)

    def broken(*args: object, **kwargs: object) -> object:
        raise TypeError("the instrumentation's helper changed")

    monkeypatch.setattr(sql_tracing, "_hydrate_span_from_args", broken)
    with provider.get_tracer("test").start_as_current_span("Charge", kind=SpanKind.SERVER):
        assert await conn.fetchval("SELECT 41 + 1") == 42
        with pytest.raises(asyncpg.DivisionByZeroError):  # its own error, not the tracing's
            await conn.fetchval("SELECT 1 / 0")
    recorded = _by_name(exporter)
    assert set(recorded) == {"Charge"}
    assert recorded["Charge"].attributes is not None
    assert recorded["Charge"].attributes[STATEMENTS] == 2


def test_the_threshold_is_a_setting() -> None:
    assert Settings().trace_sql_min_ms == 10.0
    assert Settings(TRACE_SQL_MIN_MS="0").trace_sql_min_ms == 0.0
    with pytest.raises(ValidationError, match="TRACE_SQL_MIN_MS"):
        Settings(TRACE_SQL_MIN_MS="-1")
