"""request_ids are each customer's own: one cannot probe, answer for or take another's.

When they were one namespace for every customer, customer A sending B's
request_id got ALREADY_EXISTS naming B's order, and could use a request_id
before B did so that B's order could not be placed.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import asyncpg
import grpc
import pytest

from clients.errors import Reason
from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import Role
from server.orders.placing import fingerprint
from server.orders.projection import OrderProjection
from tests.support.orders import order_request, rpc_error, stock_sku
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


async def test_two_customers_with_the_same_request_id_get_an_order_each(stack: Stack) -> None:
    alice, bob = customer(), customer()
    as_alice = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=alice).orders
    as_bob = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=bob).orders
    sku = await stock_sku(stack, quantity=10)
    request = order_request(sku, request_id="r-1", customer_id=alice)

    mine = (await as_alice.CreateOrder(request)).order
    theirs = (await as_bob.CreateOrder(order_request(sku, request_id="r-1", customer_id=bob))).order

    assert mine.order_id != theirs.order_id
    assert (mine.customer_id, theirs.customer_id) == (alice, bob)
    for caller, own, other in ((as_alice, mine, theirs), (as_bob, theirs, mine)):
        read = await caller.GetOrder(pb.GetOrderRequest(order_id=own.order_id))
        assert read.order.order_id == own.order_id
        code, error = await rpc_error(caller.GetOrder(pb.GetOrderRequest(order_id=other.order_id)))
        assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, Reason.ORDER_NOT_FOUND)
        listed = await caller.ListOrders(pb.ListOrdersRequest())
        assert [o.order_id for o in listed.orders] == [own.order_id]

    # A repeat is the same order.
    assert (await as_alice.CreateOrder(request)).order.order_id == mine.order_id

    # Other content under the same request_id names the caller's own order, and only it.
    changed = order_request(sku, 2, request_id="r-1", customer_id=alice)
    code, error = await rpc_error(as_alice.CreateOrder(changed))
    assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.REQUEST_ID_REUSED)
    assert error.metadata["order_id"] == mine.order_id
    assert theirs.order_id not in error.message


async def test_an_order_placed_under_the_old_ids_is_still_found_by_its_customer(
    stack: Stack, database_url: str
) -> None:
    alice, bob = customer(), customer()
    sku = await stock_sku(stack, quantity=10)
    request = order_request(sku, request_id=f"old-{uuid.uuid4().hex[:8]}", customer_id=alice)
    # As the front door stored it when an order's id came from its request_id alone.
    old_id = "ord_" + hashlib.sha256(request.request_id.encode()).hexdigest()[:32]
    now = time.time()
    stored = pb.Order(
        order_id=old_id,
        state=pb.ORDER_STATE_PENDING,
        request_id=request.request_id,
        customer_id=alice,
    )
    stored.create_time.FromNanoseconds(int(now * 1e9))
    stored.update_time.FromNanoseconds(int(now * 1e9))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        await OrderProjection(pool).record(stored, 0, fingerprint(request))
    finally:
        await pool.close()

    # Its repeat is that order, not a second one.
    as_alice = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=alice).orders
    assert (await as_alice.CreateOrder(request)).order.order_id == old_id
    listed = await as_alice.ListOrders(pb.ListOrdersRequest())
    assert [o.order_id for o in listed.orders] == [old_id]
    code, error = await rpc_error(
        as_alice.CreateOrder(
            order_request(sku, 3, request_id=request.request_id, customer_id=alice)
        )
    )
    assert (code, error.metadata.get("order_id")) == (grpc.StatusCode.ALREADY_EXISTS, old_id)

    # Another customer with the same request_id gets an order of its own.
    as_bob = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=bob).orders
    theirs = (
        await as_bob.CreateOrder(order_request(sku, request_id=request.request_id, customer_id=bob))
    ).order
    assert theirs.order_id != old_id
    assert theirs.customer_id == bob
