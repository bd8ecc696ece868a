"""Long-running steps survive a dead worker; the live state of an order is visible."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.shipping.v1 import shipping_pb2
from tests.support.orders import order_request, place, stock_sku, wait_for
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def _log_lines(text: str, order_id: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if order_id in line:
            lines.append(record)
    return lines


async def _booking(stack: Stack, order_id: str) -> shipping_pb2.Shipment:
    while True:
        try:
            return (
                await stack.shipping.GetShipment(shipping_pb2.GetShipmentRequest(order_id=order_id))
            ).shipment
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_booking_resumes_from_its_heartbeat(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku))
    booked = await _booking(stack, order.order_id)
    assert booked.state == shipping_pb2.SHIPMENT_STATE_BOOKING
    # Kill the worker once the server holds the step's first heartbeat.
    handle = temporal.client.get_workflow_handle(order.order_id)
    await eventually(
        handle.describe,
        lambda d: any(
            a.activity_type.name == "arrange_shipping" and a.HasField("heartbeat_details")
            for a in d.raw_description.pending_activities
        ),
        every=0.02,
    )

    worker = stack.process("worker")
    log_before = len(worker.log)
    worker.kill()
    worker.start()
    try:
        shipped = (await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,), 60))[-1]
    finally:
        await asyncio.sleep(0)  # the new worker stays for the other tests

    shipment = (
        await stack.shipping.GetShipment(shipping_pb2.GetShipmentRequest(order_id=order.order_id))
    ).shipment
    assert shipment.shipment_id == booked.shipment_id
    assert shipped.tracking_number == shipment.tracking_number
    # One booking: the retry asked the carrier nothing new, it only waited.
    requested = [
        r
        for r in _log_lines(stack.process("shipping").log, order.order_id)
        if r.get("message") == "shipment requested"
    ]
    assert len(requested) == 1
    resumed = [
        r
        for r in _log_lines(worker.log[log_before:], order.order_id)
        if "resuming shipment booking from heartbeat" in r.get("message", "")
    ]
    assert resumed, worker.log[log_before:][-3000:]

    history = await temporal.client.get_workflow_handle(order.order_id).fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.attempt > 1
    ]
    assert attempts == [2]


async def test_the_full_view_shows_the_running_step_and_what_would_be_undone(
    stack: Stack,
) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku, token="tok_slow"))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_RESERVED,))
    # RESERVED is stored a moment before the workflow moves on to the charge;
    # until the worker cuts the charge's workflow task, the read answers from
    # the projection (busy), then with the workflow's own account.
    response = await eventually(
        lambda: stack.orders.GetOrder(
            pb.GetOrderRequest(order_id=order.order_id, view=pb.ORDER_VIEW_FULL)
        ),
        lambda r: r.progress.current_step != "" and not r.progress.busy,
    )
    progress = response.progress
    assert progress.workflow_running
    assert progress.current_step == "charge_payment"
    assert progress.current_step_attempt == 1
    assert list(progress.pending_compensations) == ["refund_payment", "release_stock"]
    assert not progress.cancel_requested

    basic = await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order.order_id))
    assert not basic.HasField("progress")

    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    await stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id))
    done = await stack.orders.GetOrder(
        pb.GetOrderRequest(order_id=order.order_id, view=pb.ORDER_VIEW_FULL)
    )
    assert done.order.state == pb.ORDER_STATE_DELIVERED
    assert not done.progress.workflow_running


async def test_the_full_view_counts_retries_of_a_step(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku, token="tok_transient"))
    seen_attempts = set()
    async with asyncio.timeout(30):
        while True:
            response = await stack.orders.GetOrder(
                pb.GetOrderRequest(order_id=order.order_id, view=pb.ORDER_VIEW_FULL)
            )
            if response.progress.current_step == "charge_payment":
                seen_attempts.add(response.progress.current_step_attempt)
                if response.progress.current_step_attempt > 1:
                    assert "unavailable" in response.progress.last_attempt_failure
            if response.order.state in (pb.ORDER_STATE_SHIPPING, pb.ORDER_STATE_SHIPPED):
                break
            await asyncio.sleep(0.1)
    assert max(seen_attempts) >= 2
