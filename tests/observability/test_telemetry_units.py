"""The pieces under the stack's telemetry, without the stack: exporters, logs, the trace command."""

from __future__ import annotations

import io
import json
import logging
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.trace import SpanKind

from server.core import logging as core_logging
from server.core.settings import Settings
from server.core.telemetry import chosen_span_id, tracer_provider
from server.devstack import traces
from tests.support.stack import free_port


def _settings(**values: str) -> Settings:
    return Settings.model_validate(values)


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP collector that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.arrived = threading.Event()

    def Export(self, request: Any, context: Any) -> trace_service_pb2.ExportTraceServiceResponse:
        self.received.append(request)
        self.arrived.set()
        return trace_service_pb2.ExportTraceServiceResponse()


def test_spans_go_over_otlp_when_an_endpoint_is_set() -> None:
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    server.start()
    try:
        provider = tracer_provider(
            "payments",
            _settings(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}"),
        )
        with provider.get_tracer("test").start_as_current_span("Charge", kind=SpanKind.SERVER):
            pass
        provider.force_flush()
        assert collector.arrived.wait(10)
        provider.shutdown()
    finally:
        server.stop(None)
    (resource_spans,) = collector.received[0].resource_spans
    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attributes["service.name"] == "payments"
    assert [s.name for s in resource_spans.scope_spans[0].spans] == ["Charge"]


def test_spans_go_to_a_file_as_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "spans" / "traces.jsonl"
    provider = tracer_provider("worker", _settings(OTEL_TRACES_FILE=str(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("RunActivity:x", kind=SpanKind.SERVER) as parent:
        with tracer.start_as_current_span("/svc/Call", kind=SpanKind.CLIENT):
            pass
        with chosen_span_id(0xABC):
            tracer.start_span("chosen").end()
    provider.shutdown()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    by_name = {r["name"]: r for r in records}
    server_id = format(parent.get_span_context().span_id, "016x")
    assert by_name["RunActivity:x"]["parent_span_id"] is None
    assert by_name["/svc/Call"]["parent_span_id"] == server_id
    assert by_name["/svc/Call"]["kind"] == "CLIENT"
    assert by_name["chosen"]["span_id"] == format(0xABC, "016x")
    assert {r["service"] for r in records} == {"worker"}


def test_a_trace_starts_only_at_an_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    provider = tracer_provider("orders", _settings(OTEL_TRACES_FILE=str(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("LISTEN", kind=SpanKind.CLIENT):  # no call behind it
        pass
    provider.shutdown()
    assert not path.exists() or path.read_text() == ""


def _format(record: logging.LogRecord, *, as_json: bool = True) -> str:
    formatter = core_logging._formatter(
        core_logging._shared("worker"), as_json=as_json, colors=False
    )
    return formatter.format(record)


def _record(message: str, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(
        "temporalio.workflow", logging.WARNING, __file__, 1, message, (), None
    )
    record.__dict__.update(extra)
    return record


def test_workflow_log_records_name_their_order() -> None:
    order_id = "ord_" + "0123456789abcdef" * 2
    line = json.loads(
        _format(
            _record(
                "order step failed",
                reason="PAYMENT_DECLINED",
                temporal_workflow={
                    "workflow_id": order_id,
                    "workflow_type": "OrderWorkflow",
                    "run_id": "r1",
                    "namespace": "default",
                },
            )
        )
    )
    assert line["message"] == "order step failed"
    assert (line["service"], line["level"]) == ("worker", "warning")
    assert line["order_id"] == order_id
    assert line["workflow_type"] == "OrderWorkflow"
    assert "temporal_workflow" not in line and line["timestamp"]


@pytest.mark.parametrize(
    "message",
    [
        "charging ChargeInput(order_id='o', payment_token='tok_visa')",
        'request {"payment_token": "tok_visa"}',
        'request payment_token: "tok_visa" amount: 3',
    ],
)
@pytest.mark.parametrize("as_json", [True, False])
def test_payment_tokens_never_reach_a_log_line(message: str, as_json: bool) -> None:
    line = _format(_record(message, payment_token="tok_visa"), as_json=as_json)
    assert "tok_visa" not in line
    assert "[redacted]" in line


def test_structlog_lines_carry_the_bound_order() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        core_logging._formatter(core_logging._shared("orders"), as_json=True, colors=False)
    )
    logger = logging.getLogger("tests.structlog")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        log = structlog.wrap_logger(
            logger,
            processors=[
                *core_logging._shared("orders"),
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        with structlog.contextvars.bound_contextvars(order_id="ord_1"):
            log.info("payment captured", payment_token="tok_visa")
    finally:
        logger.removeHandler(handler)
    line = json.loads(out.getvalue())
    assert (line["message"], line["order_id"], line["service"]) == (
        "payment captured",
        "ord_1",
        "orders",
    )
    assert line["payment_token"] == "[redacted]"


def _span(span_id: str, parent: str | None, name: str, start: int, end: int, **attrs: Any) -> dict:
    return {
        "trace_id": "t1",
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": "SERVER",
        "service": "orders",
        "start_ns": start,
        "end_ns": end,
        "status": "UNSET",
        "attributes": attrs,
    }


def test_the_trace_command_prints_an_orders_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spans = [
        _span(
            "a",
            "caller",
            "/orders.v1.OrderService/CreateOrder",
            0,
            5_000_000,
            **{"order.id": "ord_1"},
        ),
        _span("b", "a", "StartUpdateWithStartWorkflow:OrderWorkflow", 1_000_000, 4_000_000),
        _span("c", "b", "RunWorkflow:OrderWorkflow", 2_000_000, 2_000_000),
        _span("d", "a", "SELECT", 500_000, 700_000),
        {**_span("x", None, "/orders.v1.OrderService/GetOrder", 0, 1), "trace_id": "t2"},
    ]
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in spans) + "not json\n")

    assert traces.main(["ord_1", "--file", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "trace t1: 4 spans over 5.0 ms (orders)"
    names = [line.split("orders", 1)[1] for line in out[2:]]
    assert names == [
        "     /orders.v1.OrderService/CreateOrder",
        "       SELECT",
        "       StartUpdateWithStartWorkflow:OrderWorkflow",
        "         RunWorkflow:OrderWorkflow",
    ]
    assert "5.0ms" in out[2] and "3.0ms" in out[4]

    assert traces.main(["ord_unknown", "--file", str(path)]) == 1
