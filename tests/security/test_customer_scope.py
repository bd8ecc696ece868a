"""A customer service acts for the customer in its token, and for no other; operators for all."""

from __future__ import annotations

import uuid

import grpc
import pytest

from clients.errors import Reason
from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import Role
from tests.support.orders import address, order_request, rpc_error, stock_sku
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


async def test_a_customer_service_sees_and_changes_only_its_customers_orders(stack: Stack) -> None:
    alice, bob = customer(), customer()
    as_alice = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=alice).orders
    sku = await stock_sku(stack, quantity=10)
    mine = (await as_alice.CreateOrder(order_request(sku, customer_id=alice))).order
    theirs = (await stack.orders.CreateOrder(order_request(sku, customer_id=bob))).order

    # Placing for another customer is refused outright.
    code, error = await rpc_error(as_alice.CreateOrder(order_request(sku, customer_id=bob)))
    assert (code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, Reason.PERMISSION_DENIED)

    # Its own order reads as usual; another customer's does not exist for it.
    read = await as_alice.GetOrder(pb.GetOrderRequest(order_id=mine.order_id))
    assert (read.order.order_id, read.order.customer_id) == (mine.order_id, alice)
    hidden = [
        as_alice.GetOrder(pb.GetOrderRequest(order_id=theirs.order_id)),
        as_alice.CancelOrder(pb.CancelOrderRequest(order_id=theirs.order_id)),
        as_alice.UpdateShippingAddress(
            pb.UpdateShippingAddressRequest(order_id=theirs.order_id, shipping_address=address())
        ),
    ]
    for call in hidden:
        code, error = await rpc_error(call)
        assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, Reason.ORDER_NOT_FOUND)
    with pytest.raises(grpc.aio.AioRpcError) as watched:
        async for _ in as_alice.WatchOrder(pb.WatchOrderRequest(order_id=theirs.order_id)):
            pass
    assert watched.value.code() == grpc.StatusCode.NOT_FOUND

    # Listing without a customer lists its own; naming another is refused.
    listed = await as_alice.ListOrders(pb.ListOrdersRequest(page_size=500))
    assert {o.customer_id for o in listed.orders} == {alice}
    assert mine.order_id in {o.order_id for o in listed.orders}
    code, error = await rpc_error(as_alice.ListOrders(pb.ListOrdersRequest(customer_id=bob)))
    assert (code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, Reason.PERMISSION_DENIED)

    # An operator sees every customer's orders.
    for order in (mine, theirs):
        read = await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order.order_id))
        assert read.order.customer_id == order.customer_id
    everyone = await stack.orders.ListOrders(pb.ListOrdersRequest(page_size=500))
    assert {mine.order_id, theirs.order_id} <= {o.order_id for o in everyone.orders}

    # Cancelling its own order goes through.
    cancelled = await as_alice.CancelOrder(pb.CancelOrderRequest(order_id=mine.order_id))
    assert cancelled.order.order_id == mine.order_id


async def test_a_customer_service_reaches_no_internal_service(stack: Stack) -> None:
    as_shop = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=customer())
    code, error = await rpc_error(
        as_shop.inventory.GetStock(inventory_pb2.GetStockRequest(sku="MUG-1"))
    )
    assert (code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, Reason.PERMISSION_DENIED)
    assert error.metadata["method"] == "/inventory.v1.InventoryService/GetStock"
