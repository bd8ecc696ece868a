"""Changes the front door took before a step, against the saga: they win, and only they.

The front door stores a cancellation and then signals it (`cancel_order`);
the booking step raises the fences of server/orders/changes.py and reports
what it found: the address last accepted (on the booking it returns), or a
cancellation that came first (CANCELLED_FIRST). The fences themselves are
tested on a real database in tests/integration/test_order_changes.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.exceptions import ApplicationError

from clients.proto.orders.v1 import orders_pb2
from tests.support.polling import eventually
from tests.workflow_unit.fakes import SHIPMENT_ID, TRACKING_NUMBER
from tests.workflow_unit.harness import Saga, order_input
from tests.workflow_unit.test_order_workflow import (
    NEW_ADDRESS,
    forward,
    states,
    undo_all,
    wait_for_state,
)
from worker.contract import CANCEL_ORDER
from worker.model import CANCELLED_FIRST, Shipped
from worker.workflows import OrderWorkflow

CANCELLING = orders_pb2.ORDER_STATE_CANCELLING
CANCELLED = orders_pb2.ORDER_STATE_CANCELLED
SHIPPED = orders_pb2.ORDER_STATE_SHIPPED
DELIVERED = orders_pb2.ORDER_STATE_DELIVERED


async def test_a_cancellation_sent_during_a_step_stops_the_order_after_it(saga: Saga) -> None:
    gate = saga.fakes.block("charge_payment")
    order = order_input()
    handle = await saga.start(order)
    await asyncio.wait_for(gate.started.wait(), 10)

    # The front door has stored it and answered; the step still runs. The
    # workflow sees it when the SDK cuts the step's workflow task (were the
    # step to end first, the booking's fence would stop the order instead).
    await handle.signal(CANCEL_ORDER.name, "changed my mind")
    await eventually(
        lambda: handle.query(OrderWorkflow.progress), lambda progress: progress.cancel_requested
    )
    gate.open()
    result = await handle.result()

    assert result.state == CANCELLED
    assert saga.fakes.steps == [*forward(order)[:2], *undo_all(order)]
    assert states(saga.fakes)[-2:] == [CANCELLING, CANCELLED]


async def test_a_booking_that_finds_a_cancellation_first_undoes_the_order(saga: Saga) -> None:
    async def cancelled_first(_: Any) -> Any:
        raise ApplicationError(
            "the order was cancelled before this step", type=CANCELLED_FIRST, non_retryable=True
        )

    saga.fakes.behave("book_shipment", cancelled_first)
    order = order_input()
    result = await (await saga.start(order)).result()

    assert result.state == CANCELLED
    assert not result.failure.reason
    assert saga.fakes.steps == [*forward(order), *undo_all(order)]


async def test_the_order_ships_to_the_address_the_booking_was_sent_to(saga: Saga) -> None:
    async def booked_elsewhere(_: Any) -> Any:
        return Shipped(SHIPMENT_ID, TRACKING_NUMBER, address=NEW_ADDRESS)

    saga.fakes.behave("book_shipment", booked_elsewhere)
    order = order_input()
    handle = await saga.start(order)
    await wait_for_state(saga.fakes, SHIPPED)

    shipped = [o for o, _, _ in saga.fakes.records if o.state == SHIPPED]
    assert shipped[-1].shipping_address == NEW_ADDRESS.to_proto()
    assert (await handle.query(OrderWorkflow.order)).shipping_address.city == NEW_ADDRESS.city


async def test_a_cancellation_signal_after_shipping_changes_nothing(saga: Saga) -> None:
    handle = await saga.start()
    await wait_for_state(saga.fakes, SHIPPED)

    await handle.signal(CANCEL_ORDER.name, "too late")
    await handle.execute_update(OrderWorkflow.confirm_delivery)
    result = await handle.result()

    assert result.state == DELIVERED
    assert "refund_payment" not in saga.fakes.step_names
