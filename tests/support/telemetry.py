"""What the stack's processes report (spans, metrics, log lines), and a traced caller."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client.parser import text_string_to_metric_families

from clients.proto.orders.v1 import orders_pb2
from server.devstack.traces import load_spans
from tests.support.stack import SERVICES, Stack

PROCESSES = (*SERVICES, "worker")


class Caller:
    """A caller instrumented as any OpenTelemetry client would be; its spans stay in memory.

    It has a tracer provider of its own: the test process's global one is left alone.
    """

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = provider.get_tracer("tests.caller")

    @contextmanager
    def span(self, name: str) -> Iterator[tuple[tuple[str, str], ...]]:
        """A client span; yields the gRPC metadata that carries it (W3C traceparent)."""
        with self.tracer.start_as_current_span(name, kind=SpanKind.CLIENT):
            carrier: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(carrier)
            yield tuple(carrier.items())

    async def create_order(
        self, stack: Stack, request: orders_pb2.CreateOrderRequest
    ) -> orders_pb2.Order:
        with self.span("caller CreateOrder") as metadata:
            return (await stack.orders.CreateOrder(request, metadata=metadata)).order

    def finished_span(self) -> ReadableSpan:
        return self.exporter.get_finished_spans()[-1]


@dataclass
class TracedOrder:
    order: orders_pb2.Order
    caller: ReadableSpan

    @property
    def order_id(self) -> str:
        return self.order.order_id

    @property
    def trace_id(self) -> str:
        return format(self.caller.context.trace_id, "032x")

    @property
    def caller_span_id(self) -> str:
        return format(self.caller.context.span_id, "016x")


def read_spans(stack: Stack) -> list[dict[str, Any]]:
    """Every span the stack's processes have written so far."""
    return load_spans(stack.traces_path(name) for name in PROCESSES)


async def wait_for_spans(
    stack: Stack, trace_id: str, *names: str, within: float = 15.0
) -> list[dict[str, Any]]:
    """The trace's spans, once spans with each of `names` have been written."""
    async with asyncio.timeout(within):
        while True:
            spans = [s for s in read_spans(stack) if s["trace_id"] == trace_id]
            if set(names) <= {s["name"] for s in spans}:
                return spans
            await asyncio.sleep(0.1)


async def settled_spans(
    stack: Stack, trace_id: str, *, quiet: float = 0.5, within: float = 15.0
) -> list[dict[str, Any]]:
    """The trace's spans once no new one has been written for `quiet` seconds.

    Each process writes its spans in batches as they end, so a span may reach
    its file before its parent does; a quiet trace has all of them.
    """
    async with asyncio.timeout(within):
        seen: list[dict[str, Any]] = []
        while True:
            await asyncio.sleep(quiet)
            spans = [s for s in read_spans(stack) if s["trace_id"] == trace_id]
            if spans and len(spans) == len(seen):
                return spans
            seen = spans


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, by name and labels."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


@dataclass
class LogLine:
    process: str
    record: dict[str, Any] = field(default_factory=dict)


def log_lines(stack: Stack) -> list[LogLine]:
    """The JSON log records of every process (other output, e.g. Temporal's core, skipped)."""
    found = []
    for name, process in stack.processes.items():
        for line in process.log.splitlines():
            if line.startswith("{"):
                try:
                    found.append(LogLine(name, json.loads(line)))
                except json.JSONDecodeError:
                    continue
    return found
