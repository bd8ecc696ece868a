"""An order that is not sampled: no span anywhere, its trace id in every process's log lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2
from tests.observability.test_logs import WORK_DONE
from tests.support.orders import order_request, stock_sku, wait_for
from tests.support.stack import Stack, running_stack
from tests.support.telemetry import log_lines, read_spans

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(scope="module")
async def unsampled_stack(
    temporal: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path_factory.mktemp("unsampled"),
        database_url,
        temporal.client.service_client.config.target_host,
        SHIPPING_BOOKING_SECONDS="0.3",
        TRACE_WRITES_RATIO="0",
    ) as stack:
        yield stack


async def test_an_unsampled_orders_ids_reach_every_service_and_no_span_is_written(
    unsampled_stack: Stack,
) -> None:
    stack = unsampled_stack
    sku = await stock_sku(stack, 5)
    order = (await stack.orders.CreateOrder(order_request(sku))).order
    await wait_for(stack, order.order_id, (orders_pb2.ORDER_STATE_SHIPPED,), within=30)

    async def work_done() -> dict[str, str]:
        """Each process's line saying it did its part, once all of them are written."""
        while True:
            lines = [x for x in log_lines(stack) if x.record.get("order_id") == order.order_id]
            done = {
                process: line.record.get("trace_id", "")
                for line in lines
                for process, message in WORK_DONE.items()
                if line.process == process and line.record["message"] == message
            }
            if done.keys() == WORK_DONE.keys():
                return done
            await asyncio.sleep(0.2)

    trace_ids = await asyncio.wait_for(work_done(), 15)
    (trace_id,) = set(trace_ids.values())
    assert len(trace_id) == 32 and int(trace_id, 16)
    # The processes export in batches: give them time to write what they would.
    await asyncio.sleep(1.5)
    assert not [span for span in read_spans(stack) if span["trace_id"] == trace_id]
