"""An order cancelled while its booking waits to be tried again is undone, payloads encrypted.

Temporal writes the details of an activity cancelled between two attempts
itself, unencrypted. The strict codec that refuses what anyone could send
to Temporal must still take those, or the workflow fails with its payment
taken and its stock held.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2
from tests.support.temporal import decoding_client
from tests.workflow_unit.fakes import FakeActivities
from tests.workflow_unit.harness import Saga, order_input, order_worker
from worker.workflows import OrderWorkflow


async def test_a_cancel_between_two_attempts_of_a_step_undoes_the_order(
    temporal: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities()
    fakes.carrier_books_later()
    # The carrier's service is down: each attempt fails and asks for a long wait
    # (within the harness's one-minute run).
    fakes.fail_times("arrange_shipping", 100, next_retry_delay=timedelta(seconds=20))
    client = decoding_client(temporal.client)  # the platform's strict codec
    async with order_worker(client, fakes) as task_queue:
        saga = Saga(client, task_queue, fakes)
        handle = await saga.start(order_input())
        await fakes.wait_until(lambda: "arrange_shipping" in fakes.step_names)
        await asyncio.sleep(0.5)  # its first attempt has failed; the next one waits

        await handle.execute_update(OrderWorkflow.cancel, "changed my mind")
        async with asyncio.timeout(20):
            result = await handle.result()

    assert result.state == orders_pb2.ORDER_STATE_CANCELLED
    assert fakes.step_names[-3:] == ["cancel_shipment", "refund_payment", "release_stock"]
