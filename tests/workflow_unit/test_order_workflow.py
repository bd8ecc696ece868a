"""OrderWorkflow's saga against fake activities: exact call sequences and final orders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2
from tests.support.polling import eventually
from tests.workflow_unit.fakes import PAYMENT_ID, TRACKING_NUMBER, FakeActivities
from tests.workflow_unit.harness import Saga, order_input, order_worker
from worker.model import Address, ChargeInput, OrderInput, ReserveInput, ShippingInput
from worker.workflows import OrderWorkflow

PENDING = orders_pb2.ORDER_STATE_PENDING
RESERVED = orders_pb2.ORDER_STATE_RESERVED
PAID = orders_pb2.ORDER_STATE_PAID
SHIPPING = orders_pb2.ORDER_STATE_SHIPPING
SHIPPED = orders_pb2.ORDER_STATE_SHIPPED
DELIVERED = orders_pb2.ORDER_STATE_DELIVERED
CANCELLING = orders_pb2.ORDER_STATE_CANCELLING
CANCELLED = orders_pb2.ORDER_STATE_CANCELLED
COMPENSATING = orders_pb2.ORDER_STATE_COMPENSATING
FAILED = orders_pb2.ORDER_STATE_FAILED

NEW_ADDRESS = Address(name="B", line1="2 Rd", city="Y", postal_code="2", country_code="FR")


def forward(order: OrderInput) -> list[tuple[str, object]]:
    """The four forward steps with the arguments the saga must pass (the carrier books at once)."""
    return [
        ("reserve_stock", ReserveInput(order.order_id, order.lines)),
        ("charge_payment", ChargeInput(order.order_id, "USD", 2000, "tok_visa")),
        ("commit_stock", order.order_id),
        ("book_shipment", ShippingInput(order.order_id, order.address, 2, fenced=True)),
    ]


def forward_booked_later(order: OrderInput) -> list[tuple[str, object]]:
    """The forward steps when the carrier does not confirm the booking at once."""
    waiting = ShippingInput(order.order_id, order.address, 2, requested=True, fenced=True)
    return [*forward(order), ("arrange_shipping", waiting)]


def undo_all(order: OrderInput) -> list[tuple[str, object]]:
    """Every compensation, in reverse order: what undoing an order runs, however far it got."""
    return [
        (name, order.order_id) for name in ("cancel_shipment", "refund_payment", "release_stock")
    ]


def states(fakes: FakeActivities) -> list[int]:
    return [order.state for order, _, _ in fakes.records]


def assert_versions_increase(fakes: FakeActivities) -> None:
    versions = [version for _, version, _ in fakes.records]
    assert versions == sorted(set(versions)), versions
    assert {fingerprint for _, _, fingerprint in fakes.records} == {"fp"}


async def wait_for_state(fakes: FakeActivities, state: int) -> None:
    """Until the projection receives `state` (the workflow set it before writing it)."""
    await fakes.wait_until(lambda: state in states(fakes))


async def wait_for_history(
    handle: WorkflowHandle, done: Callable[[list[EventType.ValueType]], bool]
) -> None:
    """Until the workflow's history satisfies `done`."""
    async with asyncio.timeout(10):
        # The server offers no push for this; a short poll keeps the tests fast.
        while not done([e.event_type async for e in handle.fetch_history_events()]):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def after(first: EventType.ValueType, then: EventType.ValueType) -> Callable[[list], bool]:
    return lambda events: first in events and then in events[events.index(first) :]


async def cancel_workflow(handle: WorkflowHandle) -> None:
    """Cancels the workflow itself and waits until its code has seen the request."""
    await handle.cancel()
    await wait_for_history(
        handle,
        after(
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        ),
    )


def rejection(error: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> str | None:
    cause = error.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.type


# ------------------------------------------------------------- happy path


async def test_happy_path_runs_every_step_then_waits_for_delivery(saga: Saga) -> None:
    order = order_input()
    handle = await saga.start(order)
    await wait_for_state(saga.fakes, SHIPPED)

    delivered = await handle.execute_update(OrderWorkflow.confirm_delivery)
    result = await handle.result()

    assert saga.fakes.steps == forward(order)
    assert result.state == DELIVERED
    assert delivered.state == DELIVERED
    assert result.payment_id == PAYMENT_ID
    assert result.tracking_number == TRACKING_NUMBER
    assert result.total.amount_minor == 2000
    assert not result.HasField("failure")
    assert states(saga.fakes) == [PENDING, RESERVED, PAID, SHIPPING, SHIPPED, DELIVERED]
    assert_versions_increase(saga.fakes)


# ------------------------------------------------------- business failures


async def test_out_of_stock_undoes_every_step_whether_reached_or_not(saga: Saga) -> None:
    # A workflow task lost before this one may have gone further: undoing
    # covers every step (each compensation is harmless on a step never taken).
    saga.fakes.fail("reserve_stock", "OUT_OF_STOCK")
    order = order_input()

    result = await (await saga.start(order)).result()

    assert saga.fakes.steps == [forward(order)[0], *undo_all(order)]
    assert result.state == FAILED
    assert result.failure.reason == "OUT_OF_STOCK"
    assert states(saga.fakes) == [PENDING, COMPENSATING, FAILED]
    assert_versions_increase(saga.fakes)


async def test_declined_payment_undoes_every_step(saga: Saga) -> None:
    saga.fakes.fail("charge_payment", "PAYMENT_DECLINED")
    order = order_input()

    result = await (await saga.start(order)).result()

    assert saga.fakes.steps == [*forward(order)[:2], *undo_all(order)]
    assert result.state == FAILED
    assert result.failure.reason == "PAYMENT_DECLINED"
    assert states(saga.fakes) == [PENDING, RESERVED, COMPENSATING, FAILED]


async def test_undeliverable_address_undoes_every_step_in_reverse(saga: Saga) -> None:
    saga.fakes.fail("book_shipment", "ADDRESS_UNDELIVERABLE")
    order = order_input()

    result = await (await saga.start(order)).result()

    assert saga.fakes.steps == [
        *forward(order),
        ("cancel_shipment", order.order_id),
        ("refund_payment", order.order_id),
        ("release_stock", order.order_id),
    ]
    assert result.state == FAILED
    assert result.failure.reason == "ADDRESS_UNDELIVERABLE"
    assert states(saga.fakes) == [PENDING, RESERVED, PAID, SHIPPING, COMPENSATING, FAILED]


# ------------------------------------------------------------ cancellation


@pytest.mark.parametrize(
    ("step", "done"),
    [
        ("reserve_stock", 1),
        ("charge_payment", 2),
        ("arrange_shipping", 5),
    ],
)
async def test_cancel_during_a_step_undoes_every_step(saga: Saga, step: str, done: int) -> None:
    # The fake ignores cancellation (no heartbeats): the workflow must wait for
    # the step to end before undoing it, so the step finishes after the cancel.
    saga.fakes.carrier_books_later()
    gate = saga.fakes.block(step)
    order = order_input()
    handle = await saga.start(order)
    await asyncio.wait_for(gate.started.wait(), 10)

    # A local step holds the workflow task: the cancellation is taken when
    # the SDK cuts the task (at 80% of the task timeout).
    cancelling = await handle.execute_update(OrderWorkflow.cancel, "changed my mind")
    assert cancelling.state == CANCELLING
    if step == "arrange_shipping":
        await wait_for_history(
            handle, lambda events: EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED in events
        )
        # Nothing is undone while the step may still take effect.
        assert saga.fakes.step_names == [name for name, _ in forward_booked_later(order)[:done]]
    # A local step is cancelled in the worker itself: it has stopped for
    # good before its compensation starts, gate or no gate.
    gate.open()
    result = await handle.result()

    assert saga.fakes.steps == [
        *forward_booked_later(order)[:done],
        *undo_all(order),
    ]
    assert result.state == CANCELLED
    assert states(saga.fakes)[-2:] == [CANCELLING, CANCELLED]
    assert_versions_increase(saga.fakes)


async def test_a_cancel_during_a_projection_write_does_not_flag_the_order(saga: Saga) -> None:
    # The write of RESERVED is in flight when the cancellation stops the
    # saga's steps: that write was stopped on purpose, not refused, and the
    # CANCELLING write after it carries the order on.
    gate = saga.fakes.block_record(RESERVED)
    handle = await saga.start(order_input())
    await asyncio.wait_for(gate.started.wait(), 10)

    await handle.execute_update(OrderWorkflow.cancel, "changed my mind")
    gate.open()
    result = await handle.result()

    assert result.state == CANCELLED
    assert not result.attention_required
    assert not any(order.attention_required for order, _, _ in saga.fakes.records)
    assert states(saga.fakes)[-2:] == [CANCELLING, CANCELLED]
    assert_versions_increase(saga.fakes)


async def test_cancel_waits_for_a_cancelled_step_to_stop_before_undoing_it(saga: Saga) -> None:
    # This fake does honour cancellation (it heartbeats) but takes a while to stop.
    saga.fakes.carrier_books_later()
    gate = saga.fakes.heartbeat_until_cancelled("arrange_shipping")
    order = order_input()
    handle = await saga.start(order)
    await asyncio.wait_for(gate.started.wait(), 10)

    await handle.execute_update(OrderWorkflow.cancel, "changed my mind")
    result = await handle.result()

    assert gate.steps_when_stopped == [name for name, _ in forward_booked_later(order)]
    assert saga.fakes.step_names == [
        *[name for name, _ in forward_booked_later(order)],
        "cancel_shipment",
        "refund_payment",
        "release_stock",
    ]
    assert result.state == CANCELLED


async def test_cancelling_the_workflow_through_temporal_changes_nothing(saga: Saga) -> None:
    """Orders are cancelled through the front door's update; anyone can cancel a workflow."""
    gate = saga.fakes.block("charge_payment")
    order = order_input()
    handle = await saga.start(order)
    await asyncio.wait_for(gate.started.wait(), 10)

    await cancel_workflow(handle)
    gate.open()
    await wait_for_state(saga.fakes, SHIPPED)
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    result = await handle.result()

    assert saga.fakes.steps == forward(order)
    assert result.state == DELIVERED
    assert CANCELLING not in states(saga.fakes)


async def test_cancel_after_shipping_is_rejected(saga: Saga) -> None:
    handle = await saga.start()
    await wait_for_state(saga.fakes, SHIPPED)

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(OrderWorkflow.cancel, "too late")

    assert rejection(error) == "ALREADY_SHIPPED"
    assert "release_stock" not in saga.fakes.step_names
    assert (await handle.query(OrderWorkflow.order)).state == SHIPPED


async def test_cancelling_the_workflow_while_shipped_is_written_is_refused(saga: Saga) -> None:
    gate = saga.fakes.block_record(SHIPPED)
    handle = await saga.start()
    await asyncio.wait_for(gate.started.wait(), 10)

    await cancel_workflow(handle)
    gate.open()
    await wait_for_state(saga.fakes, SHIPPED)
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    result = await handle.result()

    assert result.state == DELIVERED
    assert "cancel_shipment" not in saga.fakes.step_names


async def test_cancelling_the_workflow_after_shipping_is_refused(saga: Saga) -> None:
    handle = await saga.start()
    # Idle, waiting for the delivery: every step done, the wait on its timer.
    await wait_for_history(
        handle,
        lambda events: events[-1] == EventType.EVENT_TYPE_TIMER_STARTED,
    )

    await cancel_workflow(handle)
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    result = await handle.result()

    assert result.state == DELIVERED


async def test_cancelling_the_workflow_during_compensation_still_compensates(saga: Saga) -> None:
    saga.fakes.fail("book_shipment", "ADDRESS_UNDELIVERABLE")
    gate = saga.fakes.block_record(COMPENSATING)
    order = order_input()
    handle = await saga.start(order)
    await asyncio.wait_for(gate.started.wait(), 10)

    await cancel_workflow(handle)
    gate.open()
    state: object
    try:
        state = (await handle.result()).state
    except WorkflowFailureError as error:
        state = type(error.cause).__name__  # today: CancelledError, the order left as it was

    assert saga.fakes.step_names[4:] == ["cancel_shipment", "refund_payment", "release_stock"]
    assert state in (FAILED, CANCELLED)


# ------------------------------------------------------------------ updates


async def test_address_change_before_shipping_is_used_for_the_shipment(saga: Saga) -> None:
    gate = saga.fakes.block("charge_payment")
    order = order_input()
    handle = await saga.start(order)
    await asyncio.wait_for(gate.started.wait(), 10)

    updated = await handle.execute_update(OrderWorkflow.update_shipping_address, NEW_ADDRESS)
    gate.open()
    await wait_for_state(saga.fakes, SHIPPED)

    assert updated.shipping_address.country_code == "FR"
    assert saga.fakes.steps[-1] == (
        "book_shipment",
        ShippingInput(order.order_id, NEW_ADDRESS, 2, fenced=True),
    )
    assert (await handle.query(OrderWorkflow.order)).shipping_address.city == "Y"


async def test_address_change_after_shipping_is_rejected(saga: Saga) -> None:
    handle = await saga.start()
    await wait_for_state(saga.fakes, SHIPPED)

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(OrderWorkflow.update_shipping_address, NEW_ADDRESS)

    assert rejection(error) == "ALREADY_SHIPPED"
    assert (await handle.query(OrderWorkflow.order)).shipping_address.city == "X"


async def test_accept_checks_the_request_fingerprint(saga: Saga) -> None:
    order = order_input()
    handle = await saga.start(order)

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(OrderWorkflow.accept, "another-fp")
    accepted = await handle.execute_update(OrderWorkflow.accept, "fp")

    assert rejection(error) == "REQUEST_ID_REUSED"
    assert accepted.order_id == order.order_id
    assert accepted.request_id == order.request_id
    assert accepted.total.amount_minor == 2000


# ----------------------------------------------------- stubborn compensation


async def test_failing_compensation_is_retried_and_flagged_until_it_succeeds(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    # 5 attempts per burst, a pause between bursts: the test server skips the
    # backoff and the pauses instead of waiting them out.
    fakes = FakeActivities()
    fakes.fail("charge_payment", "PAYMENT_DECLINED")
    fakes.fail_times("refund_payment", 11)
    order = order_input()

    async with order_worker(time_skipping_env.client, fakes) as task_queue:
        handle = await time_skipping_env.client.start_workflow(
            OrderWorkflow.run, order, id=f"wf-{order.order_id}", task_queue=task_queue
        )
        result = await handle.result()
        history = await handle.fetch_history()

    # The pauses start short (a brief outage costs seconds) and double.
    pauses = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToSeconds()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    assert pauses == [5, 10]

    assert fakes.step_names == [
        "reserve_stock",
        "charge_payment",
        "cancel_shipment",
        *["refund_payment"] * 12,
        "release_stock",
    ]
    flags = [(o.state, o.attention_required) for o, _, _ in fakes.records]
    assert flags == [
        (PENDING, False),
        (RESERVED, False),
        (COMPENSATING, False),
        (COMPENSATING, True),
        (COMPENSATING, False),
        (FAILED, False),
    ]
    assert_versions_increase(fakes)
    assert result.state == FAILED
    assert result.failure.reason == "PAYMENT_DECLINED"
    assert not result.attention_required


# ------------------------------------------------ what can never succeed


async def test_an_order_that_cannot_be_stored_is_refused_before_any_step(saga: Saga) -> None:
    saga.fakes.refuse_record(PENDING)
    order = order_input()
    start = WithStartWorkflowOperation(
        OrderWorkflow.run,
        order,
        id=f"wf-{order.order_id}",
        task_queue=saga.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await saga.client.execute_update_with_start_workflow(
            OrderWorkflow.accept, "fp", start_workflow_operation=start
        )
    assert rejection(error) == "INVALID_ARGUMENT"

    handle = await start.workflow_handle()
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "INVALID_ARGUMENT"
    assert saga.fakes.steps == []
    assert len(saga.fakes.records) == 1  # tried once, never again


async def test_a_later_write_refused_flags_the_order_and_the_saga_goes_on(saga: Saga) -> None:
    saga.fakes.refuse_record(PAID)
    order = order_input()
    handle = await saga.start(order)
    await wait_for_state(saga.fakes, SHIPPED)

    assert saga.fakes.steps == forward(order)
    shipped = saga.fakes.records[-1][0]
    assert shipped.state == SHIPPED
    assert shipped.attention_required
    assert states(saga.fakes).count(PAID) == 1  # refused once, not retried
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    assert (await handle.result()).state == DELIVERED


async def test_a_local_step_being_retried_shows_its_attempt_and_failure(saga: Saga) -> None:
    saga.fakes.fail_times("reserve_stock", 2)
    handle = await saga.start()

    progress = await eventually(
        lambda: handle.query(OrderWorkflow.progress),
        lambda p: p.current_step == "reserve_stock" and p.current_step_attempt >= 2,
    )
    assert "unavailable" in progress.last_attempt_failure
    await wait_for_state(saga.fakes, SHIPPED)
    assert saga.fakes.step_names.count("reserve_stock") == 3
    assert (await handle.query(OrderWorkflow.progress)).current_step_attempt == 0
