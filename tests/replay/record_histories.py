"""Records histories of the order workflow as it is now, for the replay test.

    .venv/bin/python -m tests.replay.record_histories VERSION

Runs each scenario on a throwaway dev server with stand-in activities and
writes `histories/<VERSION>_<scenario>.json`. Record a new set before a change
that alters the workflow's commands, and keep the old sets: the replay test
then proves the change is safe for workflows already running.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2
from tests.conftest import temporal_cli
from tests.support.polling import eventually
from tests.workflow_unit.fakes import SHIPMENT_ID, TRACKING_NUMBER, FakeActivities
from tests.workflow_unit.harness import order_input, order_worker
from worker.contract import CANCEL_ORDER, RETRY_NOW
from worker.model import CANCELLED_FIRST, Address, Shipped
from worker.workflows import OrderWorkflow

HISTORIES = Path(__file__).parent / "histories"

Scenario = Callable[[Client, str, FakeActivities], Awaitable[WorkflowHandle]]


async def _start(client: Client, queue: str, **changes: object) -> WorkflowHandle:
    order = order_input(**changes)
    return await client.start_workflow(
        OrderWorkflow.run, order, id=f"replay-{uuid.uuid4().hex[:8]}", task_queue=queue
    )


async def _until_shipped(handle: WorkflowHandle) -> None:
    await eventually(
        lambda: handle.query(OrderWorkflow.order),
        lambda order: order.state == orders_pb2.ORDER_STATE_SHIPPED,
    )


async def _delivered(handle: WorkflowHandle) -> WorkflowHandle:
    """Once shipped, the delivery reported and the workflow ended."""
    await _until_shipped(handle)
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    await handle.result()
    return handle


async def delivered(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    handle = await _start(client, queue)
    await handle.execute_update(
        OrderWorkflow.update_shipping_address,
        Address(name="B", line1="2 St", city="Y", postal_code="2", country_code="DE"),
    )
    return await _delivered(handle)


async def shipped_waiting(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    """Left running, waiting for its delivery report, as a live order would be."""
    handle = await _start(client, queue)
    await _until_shipped(handle)
    return handle


async def declined(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    fakes.fail("charge_payment", "PAYMENT_DECLINED")
    handle = await _start(client, queue)
    await handle.result()
    return handle


async def undeliverable(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    fakes.fail("book_shipment", "ADDRESS_UNDELIVERABLE")
    handle = await _start(client, queue)
    await handle.result()
    return handle


async def cancelled_while_shipping(
    client: Client, queue: str, fakes: FakeActivities
) -> WorkflowHandle:
    fakes.carrier_books_later()
    gate = fakes.block("arrange_shipping")
    handle = await _start(client, queue)
    await gate.started.wait()
    await handle.execute_update(OrderWorkflow.cancel, "changed my mind")
    gate.open()
    await handle.result()
    return handle


async def cancelled_through_temporal(
    client: Client, queue: str, fakes: FakeActivities
) -> WorkflowHandle:
    """A cancellation sent to the workflow itself mid-charge: ignored (`engine-cancel-ignored`)."""
    gate = fakes.block("charge_payment")
    handle = await _start(client, queue)
    await gate.started.wait()
    await handle.cancel()
    gate.open()
    return await _delivered(handle)


async def delivered_after_a_period(
    client: Client, queue: str, fakes: FakeActivities
) -> WorkflowHandle:
    """Not delivered within its first tracking period (a second): a tracking child takes over."""
    handle = await _start(client, queue, tracking_period_seconds=1.0)
    await eventually(
        lambda: handle.fetch_history(),
        lambda history: any(
            e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
            for e in history.events
        ),
        within=20,
    )
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    await handle.result()
    return handle


async def cancelled_by_signal(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    """The front door's stored cancellation, signalled mid-charge (`arrival-order`)."""
    gate = fakes.block("charge_payment")
    handle = await _start(client, queue)
    await gate.started.wait()
    await handle.signal(CANCEL_ORDER.name, "changed my mind")
    await eventually(
        lambda: handle.query(OrderWorkflow.progress), lambda progress: progress.cancel_requested
    )
    gate.open()
    await handle.result()
    return handle


async def cancelled_first(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    """The booking's fence found a cancellation the workflow had not heard of (`arrival-order`)."""

    async def fenced(_: object) -> object:
        raise ApplicationError("cancelled before", type=CANCELLED_FIRST, non_retryable=True)

    fakes.behave("book_shipment", fenced)
    handle = await _start(client, queue)
    await handle.result()
    return handle


async def booked_elsewhere(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    """The booking went to an address the front door accepted meanwhile (`arrival-order`)."""

    async def fenced(_: object) -> object:
        address = Address(name="C", line1="3 Way", city="Z", postal_code="3", country_code="FR")
        return Shipped(SHIPMENT_ID, TRACKING_NUMBER, address=address)

    fakes.behave("book_shipment", fenced)
    handle = await _start(client, queue)
    return await _delivered(handle)


async def retried_now(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    """A step pausing two minutes before its next attempt, retried at an operator's word."""
    fakes.fail_times(
        "charge_payment", 1, "DEPENDENCY_UNAVAILABLE", next_retry_delay=timedelta(minutes=2)
    )
    handle = await _start(client, queue)
    await eventually(
        lambda: handle.query(OrderWorkflow.progress),
        lambda progress: bool(progress.last_attempt_failure),
    )
    await handle.signal(RETRY_NOW.name)
    return await _delivered(handle)


async def first_write_lost(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    """The reserve step's first write lost: the workflow stores the order, then reserves."""
    fakes.lose_record_once(orders_pb2.ORDER_STATE_PENDING)
    handle = await _start(client, queue)
    return await _delivered(handle)


async def unstorable(client: Client, queue: str, fakes: FakeActivities) -> WorkflowHandle:
    """The first write refused for good: the order is refused before any step."""
    fakes.refuse_record(orders_pb2.ORDER_STATE_PENDING)
    handle = await _start(client, queue)
    try:
        await handle.result()
    except WorkflowFailureError:
        pass
    return handle


SCENARIOS: dict[str, Scenario] = {
    "first_write_lost": first_write_lost,
    "unstorable": unstorable,
    "retried_now": retried_now,
    "cancelled_by_signal": cancelled_by_signal,
    "cancelled_first": cancelled_first,
    "booked_elsewhere": booked_elsewhere,
    "delivered": delivered,
    "shipped_waiting": shipped_waiting,
    "declined": declined,
    "undeliverable": undeliverable,
    "cancelled_while_shipping": cancelled_while_shipping,
    "delivered_after_a_period": delivered_after_a_period,
    "cancelled_through_temporal": cancelled_through_temporal,
}


async def record(version: str) -> None:
    HISTORIES.mkdir(exist_ok=True)
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli())
    try:
        for name, scenario in SCENARIOS.items():
            fakes = FakeActivities()
            async with order_worker(env.client, fakes) as queue:
                handle = await scenario(env.client, queue, fakes)
                history = await handle.fetch_history()
            path = HISTORIES / f"{version}_{name}.json"
            path.write_text(history.to_json())
            print(f"wrote {path.relative_to(Path.cwd())}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.replay.record_histories VERSION (e.g. v2)")
    asyncio.run(record(sys.argv[1]))
