"""The services on databases of their own, and the front door's reads on a replica.

Orders, payments and the orders read replica each get a database; inventory
and shipping share the one DATABASE_URL names. The "replica" is a second database with
the orders schema, which the test writes itself, so that what GetOrder and
ListOrders answer shows where they read.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.database import create_pool, migrate
from server.orders.projection import OrderProjection
from tests.support.database import scratch_database
from tests.support.orders import order_request, place, stock_sku, wait_for
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(scope="module")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    async with contextlib.AsyncExitStack() as stack:
        urls = {
            name: await stack.enter_async_context(
                scratch_database(tmp_path_factory.mktemp(name), prefix=name)
            )
            for name in ("shared", "orders", "replica", "payments")
        }
        # The replica has the primary's schema, as a streaming replica would.
        pool = await create_pool(urls["replica"], max_size=1)
        await migrate(pool, "orders")
        await pool.close()
        yield urls


@pytest_asyncio.fixture(scope="module")
async def split_stack(
    temporal: WorkflowEnvironment,
    databases: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path_factory.mktemp("split-stack"),
        databases["shared"],
        temporal.client.service_client.config.target_host,
        ORDERS_DATABASE_URL=databases["orders"],
        ORDERS_READ_DATABASE_URL=databases["replica"],
        PAYMENTS_DATABASE_URL=databases["payments"],
        SHIPPING_BOOKING_SECONDS="0",
    ) as stack:
        yield stack


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
                WHERE table_schema IN ('orders', 'payments', 'inventory', 'shipping')"""
        )
    finally:
        await conn.close()
    return {row["name"] for row in rows}


async def test_an_order_ships_with_each_service_on_its_own_database(
    split_stack: Stack, databases: dict[str, str]
) -> None:
    sku = await stock_sku(split_stack, quantity=3)
    order = await place(split_stack, order_request(sku))
    seen = await wait_for(split_stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    assert seen[-1].payment_id and seen[-1].tracking_number

    # Each schema is where its service was told to keep it, and nowhere else.
    assert {"orders.orders", "orders.order_events"} <= await _tables(databases["orders"])
    assert "payments.payments" not in await _tables(databases["orders"])
    assert "payments.payments" in await _tables(databases["payments"])
    shared = await _tables(databases["shared"])
    assert {"inventory.stock", "shipping.shipments"} <= shared
    assert not any(t.startswith(("orders.", "payments.")) for t in shared)
    conn = await asyncpg.connect(databases["payments"])
    try:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM payments.payments WHERE order_id = $1", order.order_id
            )
            == 1
        )
    finally:
        await conn.close()


async def test_get_and_list_read_the_replica_and_the_rest_the_primary(
    split_stack: Stack, databases: dict[str, str]
) -> None:
    sku = await stock_sku(split_stack, quantity=3)
    customer = "cust-replica"
    order = await place(split_stack, order_request(sku, customer_id=customer))
    # Not on the replica yet: GetOrder finds the new order on the primary.
    got = (await split_stack.orders.GetOrder(pb.GetOrderRequest(order_id=order.order_id))).order
    assert got.order_id == order.order_id
    shipped = (await wait_for(split_stack, order.order_id, (pb.ORDER_STATE_SHIPPED,)))[-1]

    # The replica now holds a version of the order that the primary never had.
    marked = pb.Order()
    marked.CopyFrom(shipped)
    marked.state = pb.ORDER_STATE_DELIVERY_OVERDUE
    pool = await create_pool(databases["replica"], max_size=1)
    try:
        assert await OrderProjection(pool).record(marked, 1_000, "fingerprint")
    finally:
        await pool.close()

    got = (await split_stack.orders.GetOrder(pb.GetOrderRequest(order_id=order.order_id))).order
    assert got.state == pb.ORDER_STATE_DELIVERY_OVERDUE
    listed = (
        await split_stack.orders.ListOrders(pb.ListOrdersRequest(customer_id=customer))
    ).orders
    assert [o.state for o in listed] == [pb.ORDER_STATE_DELIVERY_OVERDUE]
    # A repeat of CreateOrder is answered from the primary.
    repeat = await place(
        split_stack,
        order_request(sku, customer_id=customer, request_id=order.request_id),
    )
    assert repeat.state == pb.ORDER_STATE_SHIPPED
