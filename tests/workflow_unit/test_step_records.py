"""Reserving, charging, committing and booking write the order they moved on in their own step.

The step-records patch (and the shipped-record patch for a confirmed
booking): one local activity each instead of a step and a write; since
first-write-in-reserve, the reserve step also makes the order's first write,
before it reserves. The fakes
record such an activity as its step, then its write, so the other tests read
the calls as they always did; these look at the history.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from clients.proto.orders.v1 import orders_pb2
from tests.workflow_unit.fakes import PAYMENT_ID, TRACKING_NUMBER
from tests.workflow_unit.harness import Saga, order_input
from tests.workflow_unit.test_order_workflow import (
    assert_versions_increase,
    rejection,
    states,
    wait_for_state,
)
from worker.workflows import OrderWorkflow

PENDING = orders_pb2.ORDER_STATE_PENDING
CANCELLING = orders_pb2.ORDER_STATE_CANCELLING
CANCELLED = orders_pb2.ORDER_STATE_CANCELLED
RESERVED = orders_pb2.ORDER_STATE_RESERVED
PAID = orders_pb2.ORDER_STATE_PAID
SHIPPED = orders_pb2.ORDER_STATE_SHIPPED


async def _local_activities(handle: WorkflowHandle) -> list[str]:
    """The activity type of each local activity in the history, in order."""
    history = await handle.fetch_history()
    return [
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)[
            "activity_type"
        ]
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]


async def _delivered(handle: WorkflowHandle) -> orders_pb2.Order:
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    return await handle.result()


async def test_an_order_ships_with_four_local_activities_where_it_took_nine(saga: Saga) -> None:
    handle = await saga.start(order_input())
    await wait_for_state(saga.fakes, SHIPPED)
    await _delivered(handle)

    assert await _local_activities(handle) == [
        "store_reserve_and_record",  # PENDING, then the reservation, then RESERVED
        "charge_payment_and_record",
        "commit_stock_and_record",
        "book_shipment_and_record",
        "record_order",  # DELIVERED
    ]
    # The first write comes before the stock is reserved, and each write is newer.
    assert [name for name, _ in saga.fakes.calls[:3]] == [
        "record_order",
        "reserve_stock",
        "record_order",
    ]
    first, reserved = saga.fakes.records[0], saga.fakes.records[1]
    assert (first[0].state, reserved[0].state) == (PENDING, RESERVED)
    assert reserved[1] == first[1] + 1
    paid = [order for order, _, _ in saga.fakes.records if order.state == PAID]
    assert [order.payment_id for order in paid] == [PAYMENT_ID]  # filled in by the step
    shipped = [order for order, _, _ in saga.fakes.records if order.state == SHIPPED]
    assert [order.tracking_number for order in shipped] == [TRACKING_NUMBER]  # by the booking
    assert_versions_increase(saga.fakes)


async def test_a_write_the_database_could_not_take_is_made_by_the_workflow(saga: Saga) -> None:
    saga.fakes.lose_record_once(RESERVED)
    handle = await saga.start(order_input())
    await wait_for_state(saga.fakes, SHIPPED)
    result = await _delivered(handle)

    assert states(saga.fakes).count(RESERVED) == 2  # lost in the step, then written on its own
    assert not result.attention_required
    assert (await _local_activities(handle))[:3] == [
        "store_reserve_and_record",
        "record_order",  # RESERVED, on its own
        "charge_payment_and_record",
    ]
    assert_versions_increase(saga.fakes)


async def test_a_write_refused_in_a_step_flags_the_order_and_the_saga_goes_on(
    saga: Saga,
) -> None:
    saga.fakes.refuse_record(PAID)
    handle = await saga.start(order_input())
    await wait_for_state(saga.fakes, SHIPPED)

    assert states(saga.fakes).count(PAID) == 1  # refused once, not retried
    shipped = saga.fakes.records[-1][0]
    assert shipped.state == SHIPPED and shipped.attention_required
    assert shipped.payment_id == PAYMENT_ID
    assert (await _delivered(handle)).attention_required


async def test_a_booking_still_in_progress_writes_nothing_and_shipped_is_written_after_it(
    saga: Saga,
) -> None:
    saga.fakes.carrier_books_later()
    handle = await saga.start(order_input())
    await wait_for_state(saga.fakes, SHIPPED)
    await _delivered(handle)

    assert (await _local_activities(handle))[3:] == [
        "book_shipment_and_record",  # the carrier is still booking: no write
        "record_order",  # SHIPPED, once arrange_shipping has the booking
        "record_order",  # DELIVERED
    ]
    assert "arrange_shipping" in saga.fakes.step_names
    assert states(saga.fakes).count(SHIPPED) == 1
    assert_versions_increase(saga.fakes)


async def test_a_shipped_write_the_database_could_not_take_is_made_by_the_workflow(
    saga: Saga,
) -> None:
    saga.fakes.lose_record_once(SHIPPED)
    handle = await saga.start(order_input())
    await wait_for_state(saga.fakes, SHIPPED)
    result = await _delivered(handle)

    assert states(saga.fakes).count(SHIPPED) == 2  # lost in the booking, then written
    written = [order for order, _, _ in saga.fakes.records if order.state == SHIPPED]
    assert written[-1].tracking_number == TRACKING_NUMBER
    assert not result.attention_required
    assert_versions_increase(saga.fakes)


async def test_a_shipped_write_refused_in_the_booking_flags_the_order(saga: Saga) -> None:
    saga.fakes.refuse_record(SHIPPED)
    handle = await saga.start(order_input())
    await saga.fakes.wait_until(lambda: "book_shipment" in saga.fakes.step_names)
    result = await _delivered(handle)

    assert states(saga.fakes).count(SHIPPED) == 1  # refused once, not retried
    assert result.attention_required
    assert result.tracking_number == TRACKING_NUMBER


async def test_a_first_write_the_database_could_not_take_reserves_only_once_it_is_made(
    saga: Saga,
) -> None:
    saga.fakes.lose_record_once(PENDING)
    handle = await saga.start(order_input())
    await wait_for_state(saga.fakes, SHIPPED)
    result = await _delivered(handle)

    assert (await _local_activities(handle))[:3] == [
        "store_reserve_and_record",  # the first write is lost: nothing reserved
        "record_order",  # PENDING, by the workflow, with its retries
        "reserve_stock_and_record",  # then the step, as before the patch
    ]
    assert [name for name, _ in saga.fakes.calls[:4]] == [
        "record_order",
        "record_order",
        "reserve_stock",
        "record_order",
    ]
    assert saga.fakes.step_names.count("reserve_stock") == 1
    assert states(saga.fakes)[:3] == [PENDING, PENDING, RESERVED]
    assert not result.attention_required
    assert_versions_increase(saga.fakes)


async def test_a_reservation_refused_after_the_first_write_fails_the_stored_order(
    saga: Saga,
) -> None:
    saga.fakes.fail("reserve_stock", "OUT_OF_STOCK")
    handle = await saga.start(order_input())
    result = await handle.result()

    # Stored before the step failed: the order is failed and undone, not refused.
    assert result.state == orders_pb2.ORDER_STATE_FAILED
    assert result.failure.reason == "OUT_OF_STOCK"
    assert states(saga.fakes) == [
        PENDING,
        orders_pb2.ORDER_STATE_COMPENSATING,
        orders_pb2.ORDER_STATE_FAILED,
    ]
    # Every step's compensation, as for any failed order (`_undo_every_step`).
    assert saga.fakes.step_names == [
        "reserve_stock",
        "cancel_shipment",
        "refund_payment",
        "release_stock",
    ]
    assert_versions_increase(saga.fakes)


async def test_a_cancellation_during_the_first_write_is_stored_and_undoes_every_step(
    saga: Saga,
) -> None:
    # Held past 80% of the task timeout, the step lets the cancellation in.
    gate = saga.fakes.block_record(PENDING)
    handle = await saga.start(order_input())
    await asyncio.wait_for(gate.started.wait(), 10)

    cancelled = await handle.execute_update(OrderWorkflow.cancel, "changed my mind")
    gate.open()
    result = await handle.result()

    assert cancelled.state == CANCELLING
    assert result.state == CANCELLED
    # The CANCELLING write stored the order; whatever the stopped step did is undone.
    assert states(saga.fakes)[0] == PENDING
    assert states(saga.fakes)[-2:] == [CANCELLING, CANCELLED]
    assert saga.fakes.step_names[-3:] == ["cancel_shipment", "refund_payment", "release_stock"]
    assert_versions_increase(saga.fakes)


async def test_a_cancellation_during_a_first_write_refused_for_good_refuses_the_order(
    saga: Saga,
) -> None:
    gate = asyncio.Event()
    held = asyncio.Event()

    async def unstorable(arg: Any) -> None:
        order, _, _ = arg
        if order.state == PENDING:
            held.set()
            await gate.wait()
        raise ApplicationError(
            "the order cannot be stored", type="INVALID_ARGUMENT", non_retryable=True
        )

    saga.fakes.behave("record_order", unstorable)
    handle = await saga.start(order_input())
    await asyncio.wait_for(held.wait(), 10)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(OrderWorkflow.cancel, "changed my mind")
    gate.set()

    assert rejection(refused) == "INVALID_ARGUMENT"
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "INVALID_ARGUMENT"
    assert saga.fakes.step_names == []  # never stored: nothing reserved, nothing to undo
