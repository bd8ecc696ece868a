"""Nothing accepted is lost or done twice when a process is away."""

from __future__ import annotations

import pytest

from clients.proto.orders.v1 import orders_pb2 as pb
from tests.support.orders import (
    order_request,
    payments_of,
    place,
    stock_of,
    stock_sku,
    wait_for,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def test_an_order_placed_while_no_worker_runs_is_kept_and_not_doubled(
    stack: Stack,
) -> None:
    sku = await stock_sku(stack, quantity=3)
    request = order_request(sku, quantity=2)
    worker = stack.process("worker")
    worker.stop()
    try:
        # Accepted without a worker: the order is durable once its workflow exists.
        accepted = await place(stack, request)
        assert accepted.state == pb.ORDER_STATE_PENDING
        read = await stack.orders.GetOrder(pb.GetOrderRequest(order_id=accepted.order_id))
        assert read.order.state == pb.ORDER_STATE_PENDING
        # The caller retries, still without a worker: the same order, no new one.
        assert (await place(stack, request)).order_id == accepted.order_id
    finally:
        worker.start()
    assert "never retrieved" not in stack.process("orders").log

    # Once a worker is back, the kept order goes ahead; the retry gets that order.
    order = await place(stack, request)
    final = (await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,)))[-1]
    assert final.order_id == order.order_id
    assert len(await payments_of(stack, order.order_id)) == 1
    assert await stock_of(stack, sku) == (1, 0)
    listed = await stack.orders.ListOrders(pb.ListOrdersRequest(customer_id=request.customer_id))
    assert [o.order_id for o in listed.orders].count(order.order_id) == 1
