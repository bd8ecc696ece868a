"""Bad input gets the right status and details; reads come from the projection."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from clients.errors import Reason, decode
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.payments.v1 import payments_pb2
from server.core.auth import Role
from tests.support.orders import order_request, place, rpc_error, stock_sku, wait_for
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def test_every_bad_field_is_reported_at_once(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    request = pb.CreateOrderRequest(
        request_id="",
        customer_id="cust-1",
        line_items=[
            pb.LineItemRequest(sku=sku, quantity=0),
            pb.LineItemRequest(sku="NO-SUCH-SKU", quantity=1),
        ],
        payment_token="tok_visa",
    )
    code, error = await rpc_error(stack.orders.CreateOrder(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field: v.reason for v in error.violations}
    assert fields == {
        "request_id": Reason.INVALID_ARGUMENT,
        "line_items[0].quantity": Reason.INVALID_ARGUMENT,
        "line_items[1].sku": Reason.UNKNOWN_SKU,
        "shipping_address": Reason.INVALID_ARGUMENT,
    }


async def test_empty_lines_and_missing_address_fields(stack: Stack) -> None:
    request = order_request("ANY")
    del request.line_items[:]
    request.shipping_address.city = ""
    request.shipping_address.country_code = "usa"
    code, error = await rpc_error(stack.orders.CreateOrder(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in error.violations} == {
        "line_items",
        "shipping_address.city",
        "shipping_address.country_code",
    }


async def test_unknown_order_is_not_found(stack: Stack) -> None:
    for call in (
        stack.orders.GetOrder(pb.GetOrderRequest(order_id="ord_missing")),
        stack.orders.CancelOrder(pb.CancelOrderRequest(order_id="ord_missing")),
        stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id="ord_missing")),
    ):
        code, error = await rpc_error(call)
        assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, Reason.ORDER_NOT_FOUND)


async def test_list_orders_filters_and_pages(stack: Stack) -> None:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    sku = await stock_sku(stack, quantity=10)
    placed = [await place(stack, order_request(sku, customer_id=customer)) for _ in range(3)]
    declined = await place(
        stack, order_request(sku, customer_id=customer, token="tok_chargeDeclined")
    )
    await wait_for(stack, declined.order_id)

    seen, token = [], ""
    while True:
        page = await stack.orders.ListOrders(
            pb.ListOrdersRequest(customer_id=customer, page_size=2, page_token=token)
        )
        assert len(page.orders) <= 2
        seen += [o.order_id for o in page.orders]
        token = page.next_page_token
        if not token:
            break
    # Newest first, each order once.
    assert seen == [o.order_id for o in reversed([*placed, declined])]

    failed = await stack.orders.ListOrders(
        pb.ListOrdersRequest(customer_id=customer, states=[pb.ORDER_STATE_FAILED])
    )
    assert [o.order_id for o in failed.orders] == [declined.order_id]

    code, _error = await rpc_error(
        stack.orders.ListOrders(
            pb.ListOrdersRequest(customer_id="someone-else", page_token=page.next_page_token or "x")
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_payment_key_reused_for_another_amount(stack: Stack) -> None:
    from clients.proto.common.v1 import money_pb2

    key = f"key-{uuid.uuid4().hex}"

    def charge(amount: int) -> payments_pb2.ChargeRequest:
        return payments_pb2.ChargeRequest(
            idempotency_key=key,
            order_id="ord_x",
            payment_token="tok_visa",
            amount=money_pb2.Money(currency_code="USD", amount_minor=amount),
        )

    first = await stack.as_role(Role.WORKER).payments.Charge(charge(100))
    again = await stack.as_role(Role.WORKER).payments.Charge(charge(100))
    assert first.payment.payment_id == again.payment.payment_id
    code, error = await rpc_error(stack.as_role(Role.WORKER).payments.Charge(charge(200)))
    assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.IDEMPOTENCY_KEY_REUSED)


async def test_out_of_range_values_are_refused_with_details(stack: Stack) -> None:
    pricey = await stock_sku(stack, quantity=10, price_minor=2**62)
    huge = order_request(pricey, quantity=10**12)
    code, error = await rpc_error(stack.orders.CreateOrder(huge))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["line_items[0].quantity"]

    overflowing = order_request(pricey, quantity=4)  # 2**64 minor units
    code, error = await rpc_error(stack.orders.CreateOrder(overflowing))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["line_items"]

    long_line2 = order_request(pricey)
    long_line2.shipping_address.line2 = "x" * 201
    code, error = await rpc_error(stack.orders.CreateOrder(long_line2))
    assert [v.field for v in error.violations] == ["shipping_address.line2"]

    code, error = await rpc_error(stack.orders.ListOrders(pb.ListOrdersRequest(states=[99])))
    assert (code, [v.field for v in error.violations]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["states"],
    )


def _methods() -> list[tuple[str, str, bool, type]]:
    """Every RPC of the five services: (service, path, server-streaming, request class)."""
    from google.protobuf import message_factory

    from clients.proto.inventory.v1 import inventory_pb2
    from clients.proto.operator.v1 import operator_pb2
    from clients.proto.payments.v1 import payments_pb2
    from clients.proto.shipping.v1 import shipping_pb2

    found = []
    for name, module in [
        ("orders", pb),
        ("payments", payments_pb2),
        ("inventory", inventory_pb2),
        ("shipping", shipping_pb2),
        # The operators' API, served by the front door.
        ("orders", operator_pb2),
    ]:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.append(
                    (
                        name,
                        f"/{service.full_name}/{method.name}",
                        method.server_streaming,
                        message_factory.GetMessageClass(method.input_type),
                    )
                )
    return found


@pytest.mark.parametrize(
    ("service", "path", "streaming", "request_type"),
    _methods(),
    ids=lambda v: v if isinstance(v, str) and v.startswith("/") else "",
)
async def test_an_empty_request_is_refused_cleanly(
    stack: Stack, service: str, path: str, streaming: bool, request_type: type
) -> None:
    channel = stack.permitted_channel(service)
    serialize, deserialize = request_type.SerializeToString, lambda raw: raw
    try:
        if streaming:
            call = channel.unary_stream(path, serialize, deserialize)(request_type(), timeout=10)
            async for _ in call:
                pass
        else:
            await channel.unary_unary(path, serialize, deserialize)(request_type(), timeout=10)
    except grpc.aio.AioRpcError as error:
        # ListOrders, SearchOrders and BatchGetStock accept an empty request; the rest say
        # what is missing.
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (path, error.details())
        assert decode(error).violations, path
    else:
        assert path in (
            "/orders.v1.OrderService/ListOrders",
            "/operator.v1.OperatorService/SearchOrders",
            "/inventory.v1.InventoryService/BatchGetStock",
        )


async def test_downstream_services_refuse_amounts_out_of_range(stack: Stack) -> None:
    from clients.proto.common.v1 import money_pb2
    from clients.proto.inventory.v1 import inventory_pb2
    from clients.proto.shipping.v1 import shipping_pb2
    from tests.support.orders import address

    sku = await stock_sku(stack, quantity=1)
    calls = [
        stack.inventory.SetStock(
            inventory_pb2.SetStockRequest(
                sku=sku,
                quantity=2**62,
                unit_price=money_pb2.Money(currency_code="USD", amount_minor=1),
            )
        ),
        stack.as_role(Role.WORKER).inventory.ReserveStock(
            inventory_pb2.ReserveStockRequest(
                order_id="ord_big",
                lines=[inventory_pb2.ReservationLine(sku=sku, quantity=10**12)] * 2,
            )
        ),
        stack.as_role(Role.WORKER).shipping.CreateShipment(
            shipping_pb2.CreateShipmentRequest(
                order_id="ord_big",
                address=address(),
                item_count=2**40,
            )
        ),
    ]
    for call in calls:
        code, error = await rpc_error(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and error.violations


async def test_codes_in_lower_case_are_accepted_and_stored_in_upper_case(stack: Stack) -> None:
    from clients.proto.common.v1 import money_pb2
    from clients.proto.inventory.v1 import inventory_pb2

    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    item = (
        await stack.inventory.SetStock(
            inventory_pb2.SetStockRequest(
                sku=sku,
                quantity=1,
                unit_price=money_pb2.Money(currency_code="eur", amount_minor=5),
            )
        )
    ).item
    assert item.unit_price.currency_code == "EUR"
    request = order_request(sku)
    request.shipping_address.country_code = "de"
    order = await place(stack, request)
    assert order.shipping_address.country_code == "DE"
    assert order.total.currency_code == "EUR"


async def test_reads_follow_every_change_of_an_order(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku))
    watched = asyncio.create_task(wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,)))
    # Reads while the order moves fill the front door's cache again and again.
    while not watched.done():
        await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order.order_id))
        await asyncio.sleep(0.005)
    await watched

    read = (await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order.order_id))).order
    assert read.state == pb.ORDER_STATE_SHIPPED
