"""What a caller sends cannot make the traces and logs grow without bound.

A CancelOrder whose order_id was megabytes long once put all of it on its
span, and every call without credentials wrote a span and a log line.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients.errors import Reason
from clients.proto.orders.v1 import orders_pb2 as pb
from tests.support.orders import rpc_error
from tests.support.stack import Stack
from tests.support.telemetry import read_spans, scrape, value

pytestmark = pytest.mark.e2e


def written(stack: Stack) -> int:
    """Bytes the front door has written so far, to its traces file and its log."""
    traces = stack.traces_path("orders")
    log = stack.process("orders").log_path
    return (traces.stat().st_size if traces.exists() else 0) + log.stat().st_size


async def written_once_flushed(stack: Stack) -> int:
    # Spans reach their file 100 ms after they end (OTEL_BSP_SCHEDULE_DELAY).
    await asyncio.sleep(1.0)
    return written(stack)


async def test_a_megabyte_order_id_costs_a_few_hundred_bytes(stack: Stack) -> None:
    order_id = "x" * 1_000_000
    before = await written_once_flushed(stack)

    code, error = await rpc_error(
        stack.orders.CancelOrder(pb.CancelOrderRequest(order_id=order_id))
    )

    assert (code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, Reason.INVALID_ARGUMENT)
    assert await written_once_flushed(stack) - before < 4096
    # The span still names it, clipped, with a marker that says so.
    [span] = [
        s
        for s in read_spans(stack)
        if s["name"] == "/orders.v1.OrderService/CancelOrder"
        and s["attributes"].get("order.id", "").startswith("xxxx")
    ]
    assert span["attributes"]["order.id"].endswith("chars]")
    assert len(span["attributes"]["order.id"]) <= 128


async def test_calls_without_credentials_are_counted_not_traced_and_logged_each(
    stack: Stack,
) -> None:
    calls = 300
    anonymous = stack.as_role(None).orders
    refused = {"grpc_method": "GetOrder", "reason": "UNAUTHENTICATED"}
    counted = value(scrape(stack.metrics_url("orders")), "grpc_server_refused_total", **refused)
    before = await written_once_flushed(stack)

    for _ in range(calls // 50):
        answers = await asyncio.gather(
            *(
                rpc_error(anonymous.GetOrder(pb.GetOrderRequest(order_id="ord_nobody")))
                for _ in range(50)
            )
        )
        assert {code for code, _ in answers} == {grpc.StatusCode.UNAUTHENTICATED}

    # A log line now and then, not one per call; no span at all.
    assert await written_once_flushed(stack) - before < 2048
    now = value(scrape(stack.metrics_url("orders")), "grpc_server_refused_total", **refused)
    assert now - counted == calls
