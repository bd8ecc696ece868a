"""A traced channel's calls: a client span in a sampled trace, the trace context in every one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# In a process of its own, since OpenTelemetry's interceptors use the global
# tracer provider: a server that reports the traceparent each call brought,
# and three calls on a traced channel (in an unsampled trace, in a sampled
# one, in none), with the client spans the process recorded.
PROGRAM = """
import asyncio, json
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from clients.channels import open_channel

exporter = InMemorySpanExporter()
provider = TracerProvider()  # parent-based, roots sampled: OpenTelemetry's default
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("caller")

class Reporting(health.aio.HealthServicer):
    def __init__(self):
        super().__init__()
        self.seen = []

    async def Check(self, request, context):
        self.seen.append(dict(context.invocation_metadata()).get("traceparent"))
        return await super().Check(request, context)

async def main():
    servicer = Reporting()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}")
    check = health_pb2_grpc.HealthStub(channel).Check
    request = health_pb2.HealthCheckRequest()
    report = {}

    unsampled = NonRecordingSpan(
        SpanContext(0xA1 << 64, 0xB2, is_remote=True, trace_flags=TraceFlags(0))
    )
    with trace.use_span(unsampled):
        await check(request)
    with tracer.start_as_current_span("sampled parent") as parent:
        await check(request)
        report["sampled_trace"] = format(parent.get_span_context().trace_id, "032x")
    await check(request)
    await channel.close()
    await server.stop(None)

    report["seen"] = servicer.seen
    report["client_spans"] = [
        {
            "trace_id": format(span.context.trace_id, "032x"),
            "span_id": format(span.context.span_id, "016x"),
            "parent": format(span.parent.span_id, "016x") if span.parent else None,
        }
        for span in exporter.get_finished_spans()
        if span.kind == trace.SpanKind.CLIENT
    ]
    print(json.dumps(report))

asyncio.run(main())
"""


def parsed(traceparent: str) -> tuple[str, str, bool]:
    """The trace id, the parent span id and the sampled flag of a W3C traceparent."""
    _version, trace_id, span_id, flags = traceparent.split("-")
    return trace_id, span_id, bool(int(flags, 16) & 1)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_call_in_an_unsampled_trace_carries_the_trace_and_records_no_span(
    report: dict[str, Any],
) -> None:
    trace_id = format(0xA1 << 64, "032x")
    # The caller's own context, not sampled: the server's log lines get its trace id.
    assert parsed(report["seen"][0]) == (trace_id, f"{0xB2:016x}", False)
    assert all(span["trace_id"] != trace_id for span in report["client_spans"])


def test_a_call_in_a_sampled_trace_gets_a_client_span_the_server_joins(
    report: dict[str, Any],
) -> None:
    trace_id = report["sampled_trace"]
    (span,) = [span for span in report["client_spans"] if span["trace_id"] == trace_id]
    assert parsed(report["seen"][1]) == (trace_id, span["span_id"], True)


def test_a_call_outside_any_trace_is_left_to_the_sampler(report: dict[str, Any]) -> None:
    # OpenTelemetry's default samples roots: the call starts a trace of its own.
    assert len(report["client_spans"]) == 2
    root = report["client_spans"][-1]
    assert root["parent"] is None
    assert parsed(report["seen"][2]) == (root["trace_id"], root["span_id"], True)
