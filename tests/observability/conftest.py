"""A stack of its own for the observability tests, and one order traced from its caller.

The processes write their spans to a file each (Stack.traces_path) and serve
their metrics on free ports (Stack.metrics_url); their logs are JSON lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2
from tests.support.orders import order_request, stock_sku, wait_for
from tests.support.stack import Stack, running_stack
from tests.support.telemetry import Caller, TracedOrder, settled_spans, wait_for_spans


@pytest_asyncio.fixture(scope="package")
async def stack(
    temporal: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path_factory.mktemp("observed"),
        database_url,
        temporal.client.service_client.config.target_host,
        SHIPPING_BOOKING_SECONDS="0.3",
        # Every statement a span, as when chasing one order's trace: the tests
        # follow the trace down to each process's SQL. The default, slow
        # statements only, is tests/observability/test_sql_spans.py's.
        TRACE_SQL_MIN_MS="0",
    ) as stack:
        yield stack


@pytest_asyncio.fixture(scope="package")
async def traced_order(stack: Stack) -> TracedOrder:
    """An order placed under a caller's span, followed until it has shipped."""
    sku = await stock_sku(stack, 5, price_minor=1999)
    caller = Caller()
    order = await caller.create_order(stack, order_request(sku, 2))
    await wait_for(stack, order.order_id, (orders_pb2.ORDER_STATE_SHIPPED,), within=30)
    traced = TracedOrder(order=order, caller=caller.finished_span())
    await wait_for_spans(stack, traced.trace_id, "RunActivity:arrange_shipping")
    await settled_spans(stack, traced.trace_id)
    return traced
