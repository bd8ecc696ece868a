"""Input the front door must refuse itself, before any order exists.

Each of these once got through: an order stuck forever on text Postgres cannot
store, a catalog refusal reported as retryable, a free item no card can pay
for, an order placed for a caller that had already given up.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from clients.errors import Reason
from clients.proto.common.v1 import money_pb2
from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.orders.v1 import orders_pb2 as pb
from server.orders.placing import order_id_for
from tests.support.orders import new_sku, order_request, rpc_error, stock_sku
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def assert_never_placed(stack: Stack, request: pb.CreateOrderRequest) -> None:
    order_id = order_id_for(request.customer_id, request.request_id)
    code, error = await rpc_error(stack.orders.GetOrder(pb.GetOrderRequest(order_id=order_id)))
    assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, Reason.ORDER_NOT_FOUND)


@pytest.mark.parametrize(
    "field",
    ["customer_id", "shipping_address.name", "shipping_address.line2", "shipping_address.region"],
)
async def test_a_nul_character_is_refused_at_the_door(stack: Stack, field: str) -> None:
    request = order_request(await stock_sku(stack, quantity=1))
    target, _, name = field.rpartition(".")
    holder = getattr(request, target) if target else request
    setattr(holder, name, "Ada\x00Lovelace")

    code, error = await rpc_error(stack.orders.CreateOrder(request))

    assert (code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, Reason.INVALID_ARGUMENT)
    assert [v.field for v in error.violations] == [field]
    await assert_never_placed(stack, request)


async def test_too_many_lines_are_refused_before_the_catalog_is_asked(stack: Stack) -> None:
    request = order_request(await stock_sku(stack, quantity=1))
    del request.line_items[:]
    request.line_items.extend(pb.LineItemRequest(sku=new_sku(), quantity=1) for _ in range(101))

    code, error = await rpc_error(stack.orders.CreateOrder(request))

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["line_items"]


async def test_a_price_must_be_more_than_zero(stack: Stack) -> None:
    code, error = await rpc_error(
        stack.inventory.SetStock(
            inventory_pb2.SetStockRequest(
                sku=new_sku(),
                quantity=5,
                unit_price=money_pb2.Money(currency_code="USD", amount_minor=0),
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["unit_price.amount_minor"]


async def test_an_item_stored_without_a_price_is_not_sold(stack: Stack, database_url: str) -> None:
    import asyncpg

    sku = await stock_sku(stack, quantity=5)
    # A price stored before the catalog refused zero.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE inventory.stock SET unit_price_minor = 0 WHERE sku = $1", sku)
    finally:
        await conn.close()
    request = order_request(sku)

    code, error = await rpc_error(stack.orders.CreateOrder(request))

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["line_items[0].sku"]
    await assert_never_placed(stack, request)


async def test_no_order_is_placed_for_a_caller_whose_deadline_is_too_short(stack: Stack) -> None:
    request = order_request(await stock_sku(stack, quantity=1))

    for timeout in (0.01, 0.1):
        request.request_id = str(uuid.uuid4())
        try:
            await stack.orders.CreateOrder(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            assert error.code() in (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.INVALID_ARGUMENT,
            )
        else:
            raise AssertionError("an order was placed in time it could not have had")
        # The handler may still be running when the caller gives up.
        await asyncio.sleep(1)
        await assert_never_placed(stack, request)

    # With a workable deadline the same request goes through.
    order = (await stack.orders.CreateOrder(request, timeout=10)).order
    assert order.state == pb.ORDER_STATE_PENDING
