"""Delivery tracking: continue-as-new on a period, no report lost, escalation, time skipping."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from clients.proto.orders.v1 import orders_pb2
from tests.support.polling import eventually
from tests.workflow_unit.fakes import FakeActivities
from tests.workflow_unit.harness import Saga, order_input, order_worker
from worker.main import WORKFLOWS, sandbox_runner
from worker.model import Shipped, TrackingInput
from worker.tracking import DeliveryTrackingWorkflow, tracking_id
from worker.workflows import OrderWorkflow

DAY = 24 * 3600.0


async def _runs(client: Client, workflow_id: str, first_run_id: str) -> int:
    """How many runs the workflow went through, following continue-as-new."""
    runs, run_id = 1, first_run_id
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return runs
        runs += 1
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id


async def _start_tracking(
    client: Client, task_queue: str, period: float, escalate_after: float = 30 * DAY
) -> WorkflowHandle:
    order_id = f"ord-{uuid.uuid4().hex[:8]}"
    return await client.start_workflow(
        DeliveryTrackingWorkflow.run,
        TrackingInput(
            order_id, time.time(), period_seconds=period, escalate_after_seconds=escalate_after
        ),
        id=tracking_id(order_id),
        task_queue=task_queue,
    )


async def test_a_report_sent_during_rollovers_is_never_lost(temporal: WorkflowEnvironment) -> None:
    # Runs roll over every 50 ms, so reports sent at random moments land
    # before, during and after rollovers; every one must end its workflow.
    task_queue = f"tracking-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal.client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=sandbox_runner(),
    ):
        handles = [await _start_tracking(temporal.client, task_queue, 0.05) for _ in range(8)]
        # Each has rolled over once before its report is on its way: a worker
        # that has just started (the sandbox's first imports) can take longer
        # than a report's wait, and the report would then come before any
        # rollover at all.
        for handle in handles:
            await eventually(
                lambda h=handle: _runs(temporal.client, h.id, h.first_execution_run_id or ""),
                lambda runs: runs > 1,
            )

        async def report(handle: WorkflowHandle) -> None:
            await asyncio.sleep(random.uniform(0.0, 2.0))
            await temporal.client.get_workflow_handle(handle.id).signal(
                DeliveryTrackingWorkflow.report_delivery
            )

        await asyncio.gather(*(report(h) for h in handles))
        async with asyncio.timeout(30):
            await asyncio.gather(
                *(temporal.client.get_workflow_handle(h.id).result() for h in handles)
            )
    runs = [await _runs(temporal.client, h.id, h.first_execution_run_id or "") for h in handles]
    assert all(r > 1 for r in runs), runs


async def test_a_day_long_period_continues_as_new_in_seconds(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    task_queue = f"tracking-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=task_queue, workflows=WORKFLOWS, workflow_runner=sandbox_runner()
    ):
        handle = await _start_tracking(client, task_queue, period=DAY)
        await time_skipping_env.sleep(timedelta(days=3, hours=1))
        # By id alone: the report goes to whichever run is current.
        await client.get_workflow_handle(handle.id).signal(DeliveryTrackingWorkflow.report_delivery)
        await client.get_workflow_handle(handle.id).result()
    assert await _runs(client, handle.id, handle.first_execution_run_id or "") == 4


async def test_an_order_not_delivered_in_time_escalates_then_delivers(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities()
    order = order_input(tracking_period_seconds=DAY, escalate_after_seconds=3 * DAY)
    client = time_skipping_env.client
    async with order_worker(client, fakes) as task_queue:
        handle = await client.start_workflow(
            OrderWorkflow.run, order, id=order.order_id, task_queue=task_queue
        )
        await time_skipping_env.sleep(timedelta(days=2))
        assert (await handle.query(OrderWorkflow.order)).state == orders_pb2.ORDER_STATE_SHIPPED
        await time_skipping_env.sleep(timedelta(days=2))
        order_now = await handle.query(OrderWorkflow.order)
        assert order_now.state == orders_pb2.ORDER_STATE_DELIVERY_OVERDUE
        await handle.execute_update(OrderWorkflow.confirm_delivery)
        result = await handle.result()
    assert result.state == orders_pb2.ORDER_STATE_DELIVERED
    states = [o.state for o, _, _ in fakes.records]
    assert states[-2:] == [
        orders_pb2.ORDER_STATE_DELIVERY_OVERDUE,
        orders_pb2.ORDER_STATE_DELIVERED,
    ]


async def test_a_delivery_reported_in_the_first_period_starts_no_child(saga: Saga) -> None:
    handle = await saga.start()
    await eventually(
        lambda: handle.query(OrderWorkflow.progress),
        lambda progress: progress.current_step == "track_delivery",
    )
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    assert (await handle.result()).state == orders_pb2.ORDER_STATE_DELIVERED
    events = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED not in events
    assert EventType.EVENT_TYPE_TIMER_CANCELED in events  # the period's timer, no longer needed


async def _tracked_by_child(saga: Saga) -> tuple[WorkflowHandle, WorkflowHandle]:
    """An order still undelivered after its first tracking period (a second), and its child."""
    handle = await saga.start(order_input(tracking_period_seconds=1.0))
    tracking = saga.client.get_workflow_handle(tracking_id(handle.id.removeprefix("wf-")))
    await eventually(lambda: _child_started(handle), bool, within=20)
    return handle, tracking


async def _child_started(handle: WorkflowHandle) -> bool:
    events = [event.event_type async for event in handle.fetch_history_events()]
    return EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED in events


async def test_delivery_is_reported_through_the_tracking_child(saga: Saga) -> None:
    handle, tracking = await _tracked_by_child(saga)
    assert not await tracking.query(DeliveryTrackingWorkflow.delivered)
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    assert (await handle.result()).state == orders_pb2.ORDER_STATE_DELIVERED
    assert await tracking.query(DeliveryTrackingWorkflow.delivered)


async def test_business_errors_are_not_retried_even_when_not_marked(saga: Saga) -> None:
    # The retry policy itself declares the business error types: a decline
    # that forgot non_retryable=True is still tried once.
    async def declined(_: object) -> None:
        raise ApplicationError("declined", type="PAYMENT_DECLINED")

    saga.fakes._behaviours["charge_payment"] = declined
    result = await (await saga.start()).result()
    assert result.failure.reason == "PAYMENT_DECLINED"
    assert saga.fakes.step_names.count("charge_payment") == 1


async def test_transient_errors_are_retried_by_the_policy(saga: Saga) -> None:
    attempts = 0

    async def flaky(_: object) -> Shipped:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ApplicationError("carrier unavailable", type="CARRIER_UNAVAILABLE")
        return Shipped(shipment_id="shp-1", tracking_number="TRK-1")

    # arrange_shipping is a regular activity: Temporal retries it.
    saga.fakes.carrier_books_later()
    saga.fakes._behaviours["arrange_shipping"] = flaky
    handle = await saga.start()
    await eventually(
        lambda: handle.query(OrderWorkflow.order),
        lambda order: order.state == orders_pb2.ORDER_STATE_SHIPPED,
        within=20,
    )
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert 3 in attempts  # the third attempt of the booking succeeded
    assert saga.fakes.step_names.count("arrange_shipping") == 3


async def test_an_order_whose_tracking_was_terminated_still_takes_its_report(saga: Saga) -> None:
    handle, tracking = await _tracked_by_child(saga)
    await tracking.terminate("operator error")
    delivered = await handle.execute_update(OrderWorkflow.confirm_delivery)
    assert delivered.state == orders_pb2.ORDER_STATE_DELIVERED
    assert (await handle.result()).state == orders_pb2.ORDER_STATE_DELIVERED
