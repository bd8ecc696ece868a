"""Traces: one tracer provider per process, exporting where the settings say.

Every process (the four services and the worker) calls `configure_tracing`
once at start-up. Spans go over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
and as JSON lines to a file when `OTEL_TRACES_FILE` is set (`make run` writes
`.data/traces.jsonl`, which `python -m server.devstack.traces` reads). With
neither, spans are still created, so that log lines and errors carry a trace
id.

A trace starts only at an entry point, a call that came into a service; work
outside any call (migrations, the LISTEN connection, health checks) is not
traced. Reads (Get*, List*, Watch* calls) are many and alike: without a
caller's trace, only a share of them (TRACE_READS_RATIO) starts one; a caller's
sampled trace is always continued. Every other call starts one at
TRACE_WRITES_RATIO, all of them unless it is set lower: an order's saga
belongs to the trace of the CreateOrder that placed it, so the ratio samples
whole orders. What is not sampled is not recorded, at the cost of a few
microseconds per span; its ids still travel, so log lines and errors carry
a trace id all the same. The one exception is a read that starts no trace:
it makes no span at all (`entry_trace_id`), since a read's ids go nowhere
but its own log lines, and its span was a sixth of the front door's CPU per
read (docs/performance.md); if it fails, it gets ids then, for its error and
the log line about it. Context crosses processes as W3C `traceparent`: in gRPC metadata
(server/core/grpc_server.py, clients/channels.py) and in Temporal headers
(server/core/workflow_tracing.py).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from server.core.settings import Settings
from server.core.sql_tracing import instrument_statements

# How often spans are written to the local file: soon enough that an order's
# trace can be read a moment after the order was placed.
_FILE_EXPORT_DELAY_MS = 1000

# A backstop: what a caller sends is clipped far shorter where it enters a
# span (server/core/grpc_server.py); this bounds any attribute, whatever set
# it, and leaves room for the longest SQL statement.
MAX_ATTRIBUTE_LENGTH = 4096

_chosen_span_id: ContextVar[int | None] = ContextVar("chosen_span_id", default=None)
_chosen_trace_id: ContextVar[int | None] = ContextVar("chosen_trace_id", default=None)


class _Ids(RandomIdGenerator):
    """Random ids, except where a caller chose the next span's or trace's id."""

    def generate_span_id(self) -> int:
        chosen = _chosen_span_id.get()
        return chosen if chosen is not None else super().generate_span_id()

    def generate_trace_id(self) -> int:
        chosen = _chosen_trace_id.get()
        return chosen if chosen is not None else super().generate_trace_id()


@contextmanager
def chosen_span_id(span_id: int) -> Iterator[None]:
    """Spans started inside get `span_id` (start exactly one).

    The order workflow's span needs an id that every replay of the workflow
    can compute without starting the span again; see workflow_tracing.py.
    """
    token = _chosen_span_id.set(span_id)
    try:
        yield
    finally:
        _chosen_span_id.reset(token)


@contextmanager
def chosen_trace_id(trace_id: int | None) -> Iterator[None]:
    """A root span started inside gets `trace_id` (None: a random one, as usual)."""
    if trace_id is None:
        yield
        return
    token = _chosen_trace_id.set(trace_id)
    try:
        yield
    finally:
        _chosen_trace_id.reset(token)


# The methods that only read: their calls start a trace at TRACE_READS_RATIO.
_READS = re.compile(r"^/[\w.]+/(Get|List|Watch|BatchGet)\w*$")
_TRACE_ID_SPACE = 1 << 64


class _EntryPoints(Sampler):
    """Starts traces at incoming calls only; everything else follows its parent."""

    def __init__(self, reads_ratio: float = 1.0, writes_ratio: float = 1.0) -> None:
        # Decided on the trace id's low bits, as OpenTelemetry's ratio sampler does.
        self.reads_bound = round(reads_ratio * _TRACE_ID_SPACE)
        self.writes_bound = round(writes_ratio * _TRACE_ID_SPACE)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind not in (SpanKind.SERVER, SpanKind.CONSUMER):
            return SamplingResult(Decision.DROP)
        if not self.starts_trace(trace_id, name):
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def starts_trace(self, trace_id: int, name: str) -> bool:
        """Whether an incoming call `name` without a caller's trace records trace `trace_id`."""
        bound = self.reads_bound if _READS.match(name) else self.writes_bound
        return (trace_id & (_TRACE_ID_SPACE - 1)) < bound

    def get_description(self) -> str:
        return "EntryPoints"


class _Sampler(ParentBased):
    """ParentBased over _EntryPoints, which an incoming call may ask before starting a span."""

    def __init__(self, entry_points: _EntryPoints) -> None:
        super().__init__(root=entry_points)
        self.entry_points = entry_points


def unrecorded_span() -> trace.Span:
    """A span with fresh ids that records nothing: ids for a call's error and log lines."""
    ids = RandomIdGenerator()
    context = trace.SpanContext(ids.generate_trace_id(), ids.generate_span_id(), is_remote=False)
    return trace.NonRecordingSpan(context)


def entry_decision(tracer: trace.Tracer, name: str) -> Callable[[], int] | None:
    """How an incoming call `name` without a caller's trace decides whether it starts one.

    Worked out once per method, so that a call pays for a random draw and
    nothing else: the decision returns the id of the trace the call starts
    (to start its span with, under `chosen_trace_id`), or INVALID_TRACE_ID
    for a read that starts none, which then needs no span at all. None when
    `tracer` is not one of `tracer_provider`'s (tests, tools): its span
    decides, as usual. A write that starts no trace still gets its span, so
    that its ids travel to the processes its order goes through.
    """
    sampler = getattr(tracer, "sampler", None)
    ids = getattr(tracer, "id_generator", None)
    if not isinstance(sampler, _Sampler) or ids is None:
        return None
    generate: Callable[[], int] = ids.generate_trace_id
    if not _READS.match(name):
        return generate
    bound = sampler.entry_points.reads_bound
    if bound == 0:
        return lambda: trace.INVALID_TRACE_ID
    low_bits = _TRACE_ID_SPACE - 1

    def decide() -> int:
        trace_id = generate()
        return trace_id if (trace_id & low_bits) < bound else trace.INVALID_TRACE_ID

    return decide


def entry_trace_id(tracer: trace.Tracer, name: str) -> int | None:
    """One call's `entry_decision`: the trace it starts, INVALID_TRACE_ID, or None."""
    decide = entry_decision(tracer, name)
    return None if decide is None else decide()


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One finished span as a flat JSON-ready dict (the local trace file's format)."""
    context = span.get_span_context()
    parent = span.parent
    return {
        "trace_id": format(context.trace_id, "032x") if context else None,
        "span_id": format(context.span_id, "016x") if context else None,
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get(SERVICE_NAME),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [
            {
                "name": event.name,
                "time_ns": event.timestamp,
                "attributes": dict(event.attributes or {}),
            }
            for event in span.events
        ],
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
            }
            for link in span.links
        ],
    }


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a file, one JSON object per line.

    Several processes may share the file: each batch is one `write` to a file
    opened with O_APPEND, so lines of different processes do not interleave.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(
            json.dumps(span_record(span), separators=(",", ":"), default=str) + "\n"
            for span in spans
        ).encode()
        try:
            with self._lock:
                fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def tracer_provider(service: str, settings: Settings) -> TracerProvider:
    """A tracer provider with the exporters the settings ask for."""
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: settings.otel_service_name or service}),
        sampler=_Sampler(_EntryPoints(settings.trace_reads_ratio, settings.trace_writes_ratio)),
        id_generator=_Ids(),
        span_limits=SpanLimits(max_span_attribute_length=MAX_ATTRIBUTE_LENGTH),
    )
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint))
        )
    if settings.otel_traces_file:
        delay = int(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", _FILE_EXPORT_DELAY_MS))
        provider.add_span_processor(
            BatchSpanProcessor(
                JsonLinesSpanExporter(settings.otel_traces_file), schedule_delay_millis=delay
            )
        )
    return provider


def configure_tracing(service: str, settings: Settings) -> TracerProvider:
    """Installs the process's tracer provider (once) and traces its SQL (sql_tracing.py)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = tracer_provider(service, settings)
    trace.set_tracer_provider(provider)
    instrument_statements(settings.trace_sql_min_ms)
    return provider


def current_trace_id() -> str | None:
    """The current span's trace id as 32 hex digits, or None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
