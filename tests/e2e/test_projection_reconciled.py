"""A projection that lags a completed order is written again from the order's workflow.

The orders service's periodic pass (server/orders/abandoned.py) asks
Temporal for the order workflows that completed lately; one whose order the
projection still shows in progress lost its last write, and the workflow's
result, the order as the saga left it, is written again. Here the last
write is undone by hand, the way a write the database refused would leave it.
"""

from __future__ import annotations

import asyncio
import urllib.request

import asyncpg
import pytest

from clients.proto.orders.v1 import orders_pb2 as pb
from tests.support.orders import order_request, place, stock_sku, wait_for
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def stored(stack: Stack, order_id: str) -> pb.Order:
    return (await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order_id))).order


async def test_a_delivered_order_the_projection_lost_is_written_again(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=1)
    order = await place(stack, order_request(sku))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    await stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id))
    await wait_for(stack, order.order_id)

    connection = await asyncpg.connect(stack.database_url)
    try:
        # The DELIVERED write undone: the row as the SHIPPED version left it.
        await connection.execute(
            """UPDATE orders.orders o
                  SET state = e.state, message = e.message
                 FROM (SELECT state, message FROM orders.order_events
                        WHERE order_id = $1 AND state = 'ORDER_STATE_SHIPPED'
                        ORDER BY version DESC LIMIT 1) e
                WHERE o.order_id = $1""",
            order.order_id,
        )
        await connection.execute("SELECT pg_notify('order_events', $1)", order.order_id)
    finally:
        await connection.close()
    assert (await stored(stack, order.order_id)).state == pb.ORDER_STATE_SHIPPED

    # Sweeps run every 2 s on the session's stack.
    repaired = await eventually(
        lambda: stored(stack, order.order_id),
        lambda o: o.state == pb.ORDER_STATE_DELIVERED,
        within=30,
    )
    assert not repaired.attention_required and repaired.tracking_number
    metrics = await asyncio.to_thread(urlopen_text, stack.metrics_url("orders"))
    assert 'orders_projection_repaired_total{outcome="repaired"}' in metrics


def urlopen_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())
