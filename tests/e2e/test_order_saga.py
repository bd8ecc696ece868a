"""The order saga through the public gRPC API of the real stack."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients.errors import Reason
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.payments.v1 import payments_pb2
from clients.proto.shipping.v1 import shipping_pb2
from tests.support.orders import (
    order_request,
    payments_of,
    place,
    rpc_error,
    state_names,
    stock_of,
    stock_sku,
    wait_for,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def test_happy_path_reaches_delivered(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=5, price_minor=1999)
    order = await place(stack, order_request(sku, quantity=2))
    assert order.state == pb.ORDER_STATE_PENDING
    assert order.total.amount_minor == 2 * 1999 and order.total.currency_code == "USD"

    seen = await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    assert state_names(seen)[-1] == "ORDER_STATE_SHIPPED"
    assert seen[-1].tracking_number and seen[-1].payment_id

    delivered = (
        await stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id))
    ).order
    assert delivered.state == pb.ORDER_STATE_DELIVERED
    got = (await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order.order_id))).order
    assert got.state == pb.ORDER_STATE_DELIVERED

    payments = await payments_of(stack, order.order_id)
    assert [(p.amount_minor, p.state) for p in payments] == [
        (3998, payments_pb2.PAYMENT_STATE_CAPTURED)
    ]
    assert await stock_of(stack, sku) == (3, 0)


async def test_every_state_change_is_streamed_in_order(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku))
    seen = await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    names = state_names(seen)
    expected = [
        "ORDER_STATE_PENDING",
        "ORDER_STATE_RESERVED",
        "ORDER_STATE_PAID",
        "ORDER_STATE_SHIPPING",
        "ORDER_STATE_SHIPPED",
    ]
    # The first message is the order as it is when the watch starts.
    assert names == expected[expected.index(names[0]) :]


async def test_declined_card_fails_the_order_and_puts_stock_back(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=3)
    order = await place(stack, order_request(sku, quantity=2, token="tok_chargeDeclined"))
    final = (await wait_for(stack, order.order_id))[-1]
    assert final.state == pb.ORDER_STATE_FAILED
    assert final.failure.reason == Reason.PAYMENT_DECLINED
    assert await payments_of(stack, order.order_id) == []
    assert await stock_of(stack, sku) == (3, 0)


async def test_undeliverable_address_refunds_and_puts_stock_back(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=4, price_minor=700)
    order = await place(stack, order_request(sku, quantity=3, country="ZZ"))
    final = (await wait_for(stack, order.order_id))[-1]
    assert final.state == pb.ORDER_STATE_FAILED
    assert final.failure.reason == Reason.ADDRESS_UNDELIVERABLE
    [payment] = await payments_of(stack, order.order_id)
    assert payment.state == payments_pb2.PAYMENT_STATE_REFUNDED
    assert payment.refunded_amount_minor == payment.amount_minor == 2100
    assert await stock_of(stack, sku) == (4, 0)


async def test_out_of_stock_fails_without_charging(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku, quantity=2))
    final = (await wait_for(stack, order.order_id))[-1]
    assert final.state == pb.ORDER_STATE_FAILED
    assert final.failure.reason == Reason.OUT_OF_STOCK
    assert await payments_of(stack, order.order_id) == []
    assert await stock_of(stack, sku) == (1, 0)


async def _cancel(stack: Stack, order_id: str) -> pb.Order:
    response = await stack.orders.CancelOrder(
        pb.CancelOrderRequest(order_id=order_id, reason="customer changed their mind")
    )
    assert response.order.state == pb.ORDER_STATE_CANCELLING
    final = (await wait_for(stack, order_id))[-1]
    assert final.state == pb.ORDER_STATE_CANCELLED
    return final


async def test_cancel_right_after_placing(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=2)
    order = await place(stack, order_request(sku, quantity=2))
    await _cancel(stack, order.order_id)
    assert all(
        p.state == payments_pb2.PAYMENT_STATE_REFUNDED
        for p in await payments_of(stack, order.order_id)
    )
    assert await stock_of(stack, sku) == (2, 0)


async def test_a_repeated_cancel_gets_the_cancelled_order(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku))
    await _cancel(stack, order.order_id)
    # The caller did not hear the first answer and asks again, once it is all over.
    again = await stack.orders.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id))
    assert again.order.state == pb.ORDER_STATE_CANCELLED


async def test_cancel_while_charging(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=2)
    # tok_slow holds the charge for a while: the order is RESERVED meanwhile.
    order = await place(stack, order_request(sku, token="tok_slow"))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_RESERVED,))
    await _cancel(stack, order.order_id)
    payments = await payments_of(stack, order.order_id)
    assert [p.state for p in payments] in ([], [payments_pb2.PAYMENT_STATE_REFUNDED])
    assert await stock_of(stack, sku) == (2, 0)


async def test_cancel_while_shipping(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=2, price_minor=900)
    order = await place(stack, order_request(sku))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPING,))
    # Cancel while the carrier is booking (it takes 2 s here).
    while True:
        try:
            shipment = (
                await stack.shipping.GetShipment(
                    shipping_pb2.GetShipmentRequest(order_id=order.order_id)
                )
            ).shipment
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)
    assert shipment.state == shipping_pb2.SHIPMENT_STATE_BOOKING
    await _cancel(stack, order.order_id)
    [payment] = await payments_of(stack, order.order_id)
    assert payment.state == payments_pb2.PAYMENT_STATE_REFUNDED
    assert payment.refunded_amount_minor == 900
    assert await stock_of(stack, sku) == (2, 0)
    shipment = (
        await stack.shipping.GetShipment(shipping_pb2.GetShipmentRequest(order_id=order.order_id))
    ).shipment
    assert shipment.state == shipping_pb2.SHIPMENT_STATE_CANCELLED


async def test_cancel_after_shipping_is_refused(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    code, error = await rpc_error(
        stack.orders.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == Reason.ALREADY_SHIPPED

    await stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id))
    code, error = await rpc_error(
        stack.orders.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION


async def test_cancel_of_a_failed_order_is_refused(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku, token="tok_chargeDeclined"))
    await wait_for(stack, order.order_id)
    code, error = await rpc_error(
        stack.orders.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id))
    )
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.ORDER_FINISHED)


async def test_the_same_request_twice_places_one_order(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=5)
    request = order_request(sku, quantity=2)
    first, second = await asyncio.gather(place(stack, request), place(stack, request))
    assert first.order_id == second.order_id
    await wait_for(stack, first.order_id, (pb.ORDER_STATE_SHIPPED,))
    again = await place(stack, request)
    assert again.order_id == first.order_id
    assert len(await payments_of(stack, first.order_id)) == 1
    assert await stock_of(stack, sku) == (3, 0)


async def test_a_reused_request_id_with_other_content_is_rejected(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=5)
    request = order_request(sku, quantity=1)
    await place(stack, request)
    changed = order_request(sku, quantity=2, request_id=request.request_id)
    code, error = await rpc_error(stack.orders.CreateOrder(changed))
    assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.REQUEST_ID_REUSED)


async def test_a_transient_gateway_error_is_retried_and_charged_once(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku, token="tok_transient"))
    final = (
        await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED, pb.ORDER_STATE_FAILED))
    )[-1]
    assert final.state == pb.ORDER_STATE_SHIPPED
    [payment] = await payments_of(stack, order.order_id)
    assert payment.state == payments_pb2.PAYMENT_STATE_CAPTURED


async def test_two_orders_for_the_last_unit(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    orders = await asyncio.gather(
        place(stack, order_request(sku)), place(stack, order_request(sku))
    )
    finals = [
        (await wait_for(stack, o.order_id, (pb.ORDER_STATE_SHIPPED, pb.ORDER_STATE_FAILED)))[-1]
        for o in orders
    ]
    assert sorted(state_names(finals)) == ["ORDER_STATE_FAILED", "ORDER_STATE_SHIPPED"]
    [failed] = [o for o in finals if o.state == pb.ORDER_STATE_FAILED]
    assert failed.failure.reason == Reason.OUT_OF_STOCK
    assert await payments_of(stack, failed.order_id) == []
    assert await stock_of(stack, sku) == (0, 0)


async def test_address_can_change_until_shipping(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku, token="tok_slow"))
    new_address = order_request(sku).shipping_address
    new_address.name = "Charles Babbage"
    updated = (
        await stack.orders.UpdateShippingAddress(
            pb.UpdateShippingAddressRequest(order_id=order.order_id, shipping_address=new_address)
        )
    ).order
    assert updated.shipping_address.name == "Charles Babbage"
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    shipment = (
        await stack.shipping.GetShipment(shipping_pb2.GetShipmentRequest(order_id=order.order_id))
    ).shipment
    assert shipment.address.name == "Charles Babbage"

    code, error = await rpc_error(
        stack.orders.UpdateShippingAddress(
            pb.UpdateShippingAddressRequest(order_id=order.order_id, shipping_address=new_address)
        )
    )
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.ALREADY_SHIPPED)


async def test_delivery_before_shipping_is_refused(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku, token="tok_slow"))
    code, error = await rpc_error(
        stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id))
    )
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.NOT_SHIPPED)
    await _cancel(stack, order.order_id)


async def test_many_watchers_see_the_same_changes(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku, token="tok_chargeDeclined"))
    streams = await asyncio.gather(*(wait_for(stack, order.order_id) for _ in range(25)))
    for seen in streams:
        assert state_names(seen)[-1] == "ORDER_STATE_FAILED"
        assert len(set(state_names(seen))) == len(seen)  # no state sent twice
