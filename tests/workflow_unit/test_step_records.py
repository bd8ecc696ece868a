"""Reserving, charging and committing write the order they moved on in their own local activity.

The step-records patch: one local activity each instead of a step and a
write. The fakes record such an activity as its step, then its write, so the
other tests read the calls as they always did; these look at the history.
"""

from __future__ import annotations

import json

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from clients.proto.orders.v1 import orders_pb2
from tests.workflow_unit.fakes import PAYMENT_ID
from tests.workflow_unit.harness import Saga, order_input
from tests.workflow_unit.test_order_workflow import (
    assert_versions_increase,
    states,
    wait_for_state,
)
from worker.workflows import OrderWorkflow

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


async def test_an_order_ships_with_six_local_activities_where_it_took_nine(saga: Saga) -> None:
    handle = await saga.start(order_input())
    await wait_for_state(saga.fakes, SHIPPED)
    await _delivered(handle)

    assert await _local_activities(handle) == [
        "record_order",  # PENDING: before any step, so that a refusal refuses the order
        "reserve_stock_and_record",
        "charge_payment_and_record",
        "commit_stock_and_record",
        "book_shipment",
        "record_order",  # SHIPPED
        "record_order",  # DELIVERED
    ]
    paid = [order for order, _, _ in saga.fakes.records if order.state == PAID]
    assert [order.payment_id for order in paid] == [PAYMENT_ID]  # filled in by the step
    assert_versions_increase(saga.fakes)


async def test_a_write_the_database_could_not_take_is_made_by_the_workflow(saga: Saga) -> None:
    saga.fakes.lose_record_once(RESERVED)
    handle = await saga.start(order_input())
    await wait_for_state(saga.fakes, SHIPPED)
    result = await _delivered(handle)

    assert states(saga.fakes).count(RESERVED) == 2  # lost in the step, then written on its own
    assert not result.attention_required
    assert (await _local_activities(handle))[:3] == [
        "record_order",
        "reserve_stock_and_record",
        "record_order",
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
