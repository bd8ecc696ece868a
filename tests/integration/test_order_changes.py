"""The fences between callers' changes and the shipment, on a real database.

Whichever of a change and a fence commits first decides, including when both
are sent at once: a change taken before the booking fence is what the booking
reads, one sent after it is refused; a cancellation taken before the shipped
fence stops the shipment, one after is refused.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest_asyncio

from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2
from server.core.database import create_pool, migrate
from server.orders.changes import OrderChanges, Verdict
from server.orders.projection import OrderProjection
from server.orders.repository import OrderRepository
from tests.support.database import scratch_database
from tests.workflow_unit.harness import order_input
from worker.model import new_order

State = orders_pb2.OrderState


@pytest_asyncio.fixture
async def pool(tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_database(tmp_path) as url:
        pool: asyncpg.Pool = await create_pool(url, max_size=8)
        await migrate(pool, "orders")
        yield pool
        await pool.close()


async def placed(
    pool: asyncpg.Pool, state: State.ValueType = State.ORDER_STATE_RESERVED, fenced: bool = True
) -> str:
    """An order as the front door stores it, then moved to `state` by its workflow."""
    order = new_order(order_input(order_id=f"ord_{uuid.uuid4().hex}"), datetime.now(UTC))
    projection = OrderProjection(pool)
    await projection.record(order, 0, "fp", run_id="run", changes_fenced=fenced)
    order.state = state
    await projection.record(order, 1000, "fp", run_id="run")
    return order.order_id


def somewhere(name: str) -> address_pb2.PostalAddress:
    return address_pb2.PostalAddress(
        name=name, line1="1 Road", city="Town", postal_code="1", country_code="FR"
    )


async def test_the_last_change_before_the_booking_fence_is_booked(pool: asyncpg.Pool) -> None:
    changes, orders = OrderChanges(pool), OrderRepository(pool)
    order_id = await placed(pool)
    assert await changes.change_address(order_id, somewhere("first")) is Verdict.ACCEPTED
    assert await changes.change_address(order_id, somewhere("second")) is Verdict.ACCEPTED
    stored = await orders.get(order_id)
    assert stored is not None and stored.order.shipping_address.name == "second"

    fence = await changes.fence_booking(order_id)
    assert fence.address == somewhere("second") and fence.cancel_reason is None
    # After the fence: refused, and the booking's address stands, also on a retry.
    assert await changes.change_address(order_id, somewhere("third")) is Verdict.ALREADY_SHIPPED
    assert (await changes.fence_booking(order_id)).address == somewhere("second")
    stored = await orders.get(order_id)
    assert stored is not None and stored.order.shipping_address.name == "second"


async def test_a_cancellation_before_the_booking_fence_stops_the_booking(
    pool: asyncpg.Pool,
) -> None:
    changes, orders = OrderChanges(pool), OrderRepository(pool)
    order_id = await placed(pool)
    assert await changes.cancel(order_id, "changed my mind") is Verdict.ACCEPTED
    assert await changes.cancel(order_id, "again") is Verdict.ACCEPTED  # a repeat is taken
    stored = await orders.get(order_id)
    assert stored is not None and stored.order.state == State.ORDER_STATE_CANCELLING

    assert (await changes.fence_booking(order_id)).cancel_reason == "changed my mind"
    assert await changes.change_address(order_id, somewhere("late")) is Verdict.FINISHED


async def test_a_cancellation_between_the_fences_stops_the_shipment(pool: asyncpg.Pool) -> None:
    changes = OrderChanges(pool)
    order_id = await placed(pool, State.ORDER_STATE_SHIPPING)
    await changes.fence_booking(order_id)
    assert await changes.cancel(order_id, "") is Verdict.ACCEPTED
    assert await changes.fence_shipped(order_id) == ""

    shipped_id = await placed(pool, State.ORDER_STATE_SHIPPING)
    await changes.fence_booking(shipped_id)
    assert await changes.fence_shipped(shipped_id) is None
    assert await changes.cancel(shipped_id, "too late") is Verdict.ALREADY_SHIPPED


async def test_changes_to_orders_that_are_not_fenced_or_finished_are_not_taken(
    pool: asyncpg.Pool,
) -> None:
    changes = OrderChanges(pool)
    old = await placed(pool, fenced=False)
    assert await changes.change_address(old, somewhere("x")) is Verdict.NOT_FENCED
    assert await changes.cancel(old, "") is Verdict.NOT_FENCED
    failed = await placed(pool, State.ORDER_STATE_COMPENSATING)
    assert await changes.change_address(failed, somewhere("x")) is Verdict.FINISHED
    assert await changes.cancel(failed, "") is Verdict.FINISHED
    shipped = await placed(pool, State.ORDER_STATE_SHIPPED)
    assert await changes.change_address(shipped, somewhere("x")) is Verdict.ALREADY_SHIPPED
    assert await changes.cancel(shipped, "") is Verdict.ALREADY_SHIPPED
    assert await changes.cancel(f"ord_{uuid.uuid4().hex}", "") is Verdict.NOT_FOUND


async def test_a_change_racing_the_fence_is_either_booked_or_refused(pool: asyncpg.Pool) -> None:
    """Sent at once, many times over: never accepted and then not booked."""
    changes = OrderChanges(pool)
    for i in range(40):
        order_id = await placed(pool)
        verdict, fence = await asyncio.gather(
            changes.change_address(order_id, somewhere(f"race {i}")),
            changes.fence_booking(order_id),
        )
        if verdict is Verdict.ACCEPTED:
            assert fence.address == somewhere(f"race {i}")
        else:
            assert verdict is Verdict.ALREADY_SHIPPED and fence.address is None
