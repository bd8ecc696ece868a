"""Logs: JSON lines that join with the order's trace, written once, without secrets."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2
from tests.support.orders import order_request, stock_sku, wait_for
from tests.support.stack import Stack
from tests.support.telemetry import (
    Caller,
    TracedOrder,
    log_lines,
    read_spans,
    wait_for_spans,
)
from tests.support.temporal import decoding_client
from worker.workflows import OrderWorkflow

pytestmark = pytest.mark.e2e

# What each service says when it does its part of an order.
WORK_DONE = {
    "orders": "order accepted",
    "inventory": "stock reserved",
    "payments": "payment captured",
    "shipping": "shipment requested",
}
TOKENS = ("tok_visa", "tok_chargeDeclined")


async def test_an_orders_log_lines_carry_its_trace_id(
    stack: Stack, traced_order: TracedOrder
) -> None:
    lines = log_lines(stack)
    for line in lines:
        assert {"timestamp", "level", "service", "message"} <= line.record.keys(), line
    about_order = [x for x in lines if x.record.get("order_id") == traced_order.order_id]
    for process, message in WORK_DONE.items():
        found = [x for x in about_order if x.process == process and x.record["message"] == message]
        assert found, f"{process} did not log {message!r} with the order id"
        assert found[0].record["trace_id"] == traced_order.trace_id
        assert found[0].record["span_id"]
    # And the other way round: whatever was logged inside the order's trace names the order.
    in_trace = [x for x in lines if x.record.get("trace_id") == traced_order.trace_id]
    assert {x.process for x in in_trace} >= set(WORK_DONE)
    assert {x.record.get("order_id") for x in in_trace} == {traced_order.order_id}


async def test_workflow_log_lines_and_spans_are_written_once_despite_replay(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    sku = await stock_sku(stack, 5)
    caller = Caller()
    order = await caller.create_order(stack, order_request(sku, token="tok_chargeDeclined"))
    assert (await wait_for(stack, order.order_id, within=30))[-1].state == (
        orders_pb2.ORDER_STATE_FAILED
    )
    trace_id = format(caller.finished_span().context.trace_id, "032x")
    # The workflow has finished: nothing is left for a worker to do but replay.
    await wait_for_spans(stack, trace_id, "CompleteWorkflow:OrderWorkflow")

    def step_failed() -> list[dict[str, object]]:
        return [
            x.record
            for x in log_lines(stack)
            if x.process == "worker"
            and x.record["message"] == "order step failed"
            and x.record.get("order_id") == order.order_id
        ]

    def spans() -> list[tuple[str, str]]:
        return sorted(
            (s["name"], s["span_id"]) for s in read_spans(stack) if s["trace_id"] == trace_id
        )

    logged = step_failed()
    assert len(logged) == 1
    assert logged[0]["trace_id"] == trace_id
    assert logged[0]["reason"] == "PAYMENT_DECLINED"
    assert logged[0]["workflow_id"] == order.order_id

    # A new worker has nothing cached: to answer a query it replays the whole history.
    worker = stack.process("worker")
    worker.stop()
    spans_before = spans()
    assert [name for name, _ in spans_before].count("RunWorkflow:OrderWorkflow") == 1
    worker.start()
    handle = decoding_client(temporal.client).get_workflow_handle(order.order_id)
    async with asyncio.timeout(30):
        replayed = await handle.query(OrderWorkflow.order)
    assert replayed.state == orders_pb2.ORDER_STATE_FAILED
    await asyncio.sleep(0.5)  # anything the replay might have written

    assert len(step_failed()) == 1
    assert spans() == spans_before


async def test_no_payment_token_reaches_any_log_or_span(
    stack: Stack, traced_order: TracedOrder
) -> None:
    # traced_order paid with tok_visa; the replay test was declined with tok_chargeDeclined.
    for name, process in stack.processes.items():
        log, spans = process.log, stack.traces_path(name).read_text()
        assert log and spans, f"{name} wrote no log or no spans"
        for token in TOKENS:
            assert token not in log, f"{name}'s log contains a payment token"
            assert token not in spans, f"{name}'s spans contain a payment token"
