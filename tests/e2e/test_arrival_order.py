"""Changes of mind while a step runs: what the front door accepted first wins.

A stack of its own, set as `make run` sets it where it matters, in
proportion: the slow test card (`tok_slow`) holds the charge for less than
the 80% of the workflow task timeout after which the worker cuts a task, and
the carrier confirms at once, so that an order whose charge ends goes on to
book in the same workflow task. (`make run` has 3 s and 4 s; here 6 s and
10 s, so that a change sent 2.5 s into the charge is still sent during it on
a machine busy with other tests.) A change sent during the charge must be
the one the parcel goes with, and must be answered while the charge runs:
the answers below are checked to arrive before the order has left RESERVED,
which no answer that waited for the step could.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from clients.errors import Reason
from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.payments.v1 import payments_pb2
from clients.proto.shipping.v1 import shipping_pb2
from tests.support.database import scratch_database
from tests.support.orders import (
    address,
    order_request,
    payments_of,
    place,
    rpc_error,
    stock_of,
    stock_sku,
    wait_for,
)
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

RESERVED = pb.ORDER_STATE_RESERVED
SHIPPED = pb.ORDER_STATE_SHIPPED


@pytest_asyncio.fixture(scope="module")
async def stack(
    temporal: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with scratch_database(tmp_path_factory.mktemp("arrival-db")) as url:
        async with running_stack(
            tmp_path_factory.mktemp("arrival"),
            url,
            temporal.client.service_client.config.target_host,
            SHIPPING_BOOKING_SECONDS="0",
            PAYMENTS_SLOW_SECONDS="6",
            ORDER_WORKFLOW_TASK_SECONDS="10",
        ) as stack:
            yield stack


def elsewhere(name: str = "Grace Hopper") -> address_pb2.PostalAddress:
    new = address(name=name)
    new.line1 = "2 Other Road"
    return new


async def get(stack: Stack, order_id: str, view: int = pb.ORDER_VIEW_BASIC) -> pb.GetOrderResponse:
    return await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order_id, view=view))


async def shipment_of(stack: Stack, order_id: str) -> shipping_pb2.Shipment | None:
    try:
        answer = await stack.shipping.GetShipment(
            shipping_pb2.GetShipmentRequest(order_id=order_id)
        )
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        return None
    return answer.shipment


async def charging(stack: Stack, sku: str) -> pb.Order:
    """An order placed with the slow card, once its charge is under way."""
    order = await place(stack, order_request(sku, token="tok_slow"))
    await wait_for(stack, order.order_id, (RESERVED,))
    return order


async def test_an_address_change_during_the_charge_is_where_the_parcel_goes(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await charging(stack, sku)

    changed = (
        await stack.orders.UpdateShippingAddress(
            pb.UpdateShippingAddressRequest(order_id=order.order_id, shipping_address=elsewhere())
        )
    ).order
    assert changed.shipping_address == elsewhere()
    # Answered while the charge still runs, and shown by reads at once.
    now = (await get(stack, order.order_id)).order
    assert now.state == RESERVED
    assert now.shipping_address == elsewhere()

    seen = await wait_for(stack, order.order_id, (SHIPPED,))
    assert seen[-1].shipping_address == elsewhere()
    shipment = await shipment_of(stack, order.order_id)
    assert shipment is not None and shipment.address == elsewhere()
    assert (await get(stack, order.order_id)).order.shipping_address == elsewhere()


async def test_a_cancellation_during_the_charge_undoes_everything(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=2, price_minor=700)
    order = await charging(stack, sku)

    cancelling = (
        await stack.orders.CancelOrder(
            pb.CancelOrderRequest(order_id=order.order_id, reason="changed my mind")
        )
    ).order
    assert cancelling.state == pb.ORDER_STATE_CANCELLING
    assert (await get(stack, order.order_id)).order.state == pb.ORDER_STATE_CANCELLING
    # Answered before the charge ended: nothing was captured yet.
    assert all(
        p.state != payments_pb2.PAYMENT_STATE_CAPTURED
        for p in await payments_of(stack, order.order_id)
    )

    seen = await wait_for(stack, order.order_id)
    assert seen[-1].state == pb.ORDER_STATE_CANCELLED
    payments = await payments_of(stack, order.order_id)
    assert sum(p.amount_minor - p.refunded_amount_minor for p in payments) == 0
    assert await stock_of(stack, sku) == (2, 0)
    shipment = await shipment_of(stack, order.order_id)
    assert shipment is None or shipment.state == shipping_pb2.SHIPMENT_STATE_CANCELLED
    # A repeat is answered with the cancelled order.
    again = await stack.orders.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id))
    assert again.order.state == pb.ORDER_STATE_CANCELLED


async def test_ten_orders_changed_half_a_second_to_two_and_a_half_in_all_ship_changed(
    stack: Stack,
) -> None:
    sku = await stock_sku(stack, quantity=10)

    async def change_after(delay: float, name: str) -> pb.Order:
        order = await place(stack, order_request(sku, token="tok_slow"))
        await asyncio.sleep(delay)
        request = pb.UpdateShippingAddressRequest(
            order_id=order.order_id, shipping_address=elsewhere(name)
        )
        changed = (await stack.orders.UpdateShippingAddress(request)).order
        assert changed.shipping_address.name == name
        return order

    orders = await asyncio.gather(
        *(change_after(0.5 + 2.0 * i / 9, f"Customer {i}") for i in range(10))
    )

    for i, order in enumerate(orders):
        await wait_for(stack, order.order_id, (SHIPPED,))
        shipment = await shipment_of(stack, order.order_id)
        assert shipment is not None and shipment.address == elsewhere(f"Customer {i}")
        assert (await get(stack, order.order_id)).order.shipping_address.name == f"Customer {i}"


async def test_a_full_view_during_the_charge_answers_from_the_projection(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await charging(stack, sku)

    full = await get(stack, order.order_id, pb.ORDER_VIEW_FULL)
    assert full.order.state == RESERVED
    assert full.progress.busy and full.progress.workflow_running
    assert full.progress.current_step == "charge_payment"

    await wait_for(stack, order.order_id, (SHIPPED,))
    after = await get(stack, order.order_id, pb.ORDER_VIEW_FULL)
    assert not after.progress.busy
    assert after.progress.current_step == "track_delivery"


async def test_changes_after_the_booking_are_refused_as_before(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku))
    await wait_for(stack, order.order_id, (SHIPPED,))

    code, error = await rpc_error(
        stack.orders.UpdateShippingAddress(
            pb.UpdateShippingAddressRequest(order_id=order.order_id, shipping_address=elsewhere())
        )
    )
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.ALREADY_SHIPPED)
    code, error = await rpc_error(
        stack.orders.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id))
    )
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.ALREADY_SHIPPED)
    shipped = (await get(stack, order.order_id)).order
    assert shipped.state == SHIPPED and shipped.shipping_address == address()


async def test_an_address_change_after_a_cancellation_is_refused(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await charging(stack, sku)
    await stack.orders.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id))

    code, error = await rpc_error(
        stack.orders.UpdateShippingAddress(
            pb.UpdateShippingAddressRequest(order_id=order.order_id, shipping_address=elsewhere())
        )
    )
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.ORDER_FINISHED)
    seen = await wait_for(stack, order.order_id)
    assert seen[-1].state == pb.ORDER_STATE_CANCELLED
    assert seen[-1].shipping_address == address()
