"""The backlog admission counts: each order once, whenever a refresh reads the projection."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest_asyncio

from clients.proto.orders.v1 import orders_pb2
from server.core.database import create_pool, migrate
from server.orders.admission import Admission, AdmissionLimits
from server.orders.projection import OrderProjection
from tests.support.database import scratch_database
from tests.workflow_unit.harness import order_input
from worker.model import new_order

LIMITS = AdmissionLimits(max_waiting=10, customer_order_rate="100 per second")


@pytest_asyncio.fixture
async def pool(tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_database(tmp_path) as url:
        pool: asyncpg.Pool = await create_pool(url, max_size=4)
        await migrate(pool, "orders")
        yield pool
        await pool.close()


def accepted() -> orders_pb2.Order:
    return new_order(order_input(order_id=f"ord_{uuid.uuid4().hex}"), datetime.now(UTC))


async def store(pool: asyncpg.Pool, order: orders_pb2.Order) -> None:
    """Stores the order as the front door does: version 0, waiting for a worker."""
    assert await OrderProjection(pool).record(order, 0, "fp", run_id=None)


async def ship(pool: asyncpg.Pool, order: orders_pb2.Order) -> None:
    order.state = orders_pb2.ORDER_STATE_SHIPPED
    assert await OrderProjection(pool).record(order, 9000, "fp", run_id=None)


async def test_an_order_stored_before_a_refresh_reads_is_counted_once(pool: asyncpg.Pool) -> None:
    admission = Admission(LIMITS, pool)
    elsewhere = accepted()  # placed by another front door
    await store(pool, elsewhere)
    await admission.refresh()
    assert admission.waiting == 1

    mine = accepted()
    with admission.order(mine.customer_id, mine.order_id):
        assert admission.waiting == 2  # counted while it is placed
        await store(pool, mine)
        # A refresh whose query runs once the row is there, before the call
        # has returned (or one that began before and waited for a connection).
        await admission.refresh()
        assert admission.waiting == 2
    assert admission.waiting == 2
    await admission.refresh()
    assert admission.waiting == 2

    # Shipped: neither the projection nor a ticket keeps it in the backlog.
    await ship(pool, mine)
    await admission.refresh()
    assert admission.waiting == 1


async def test_an_order_placed_counts_until_a_refresh_has_seen_it(pool: asyncpg.Pool) -> None:
    admission = Admission(LIMITS, pool)
    mine = accepted()
    with admission.order(mine.customer_id, mine.order_id):
        # Admitted, not stored yet: a refresh now does not see it, the ticket counts it.
        await admission.refresh()
        assert admission.waiting == 1
        await store(pool, mine)
    assert admission.waiting == 1
    await admission.refresh()
    assert admission.waiting == 1
    await ship(pool, mine)
    await admission.refresh()
    assert admission.waiting == 0


async def test_a_repeated_request_is_not_counted_again(pool: asyncpg.Pool) -> None:
    admission = Admission(LIMITS, pool)
    placed = accepted()
    await store(pool, placed)
    await admission.refresh()
    with admission.order(placed.customer_id, placed.order_id) as placing:
        # The front door finds the order the first call placed, and answers with it.
        admission.placed_before(placing)
    assert admission.waiting == 1


async def test_an_order_that_failed_to_be_placed_is_not_counted(pool: asyncpg.Pool) -> None:
    admission = Admission(LIMITS, pool)
    failed = accepted()
    try:
        with admission.order(failed.customer_id, failed.order_id):
            await admission.refresh()
            raise RuntimeError("the workflow could not be started")
    except RuntimeError:
        pass
    assert admission.waiting == 0
    await admission.refresh()
    assert admission.waiting == 0


async def test_a_full_backlog_refuses_and_reopens_as_orders_ship(pool: asyncpg.Pool) -> None:
    admission = Admission(AdmissionLimits(max_waiting=2), pool)
    orders = [accepted(), accepted()]
    for order in orders:
        with admission.order(order.customer_id, order.order_id):
            await store(pool, order)
    assert admission.platform_refusal() is not None
    await admission.refresh()
    assert admission.platform_refusal() is not None  # still two waiting, counted once each
    await ship(pool, orders[0])
    await admission.refresh()
    assert admission.platform_refusal() is None
