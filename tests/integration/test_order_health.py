"""The order health pass on a real database: ages, flags and shipping deadlines as stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from clients.proto.orders.v1 import orders_pb2
from server.core.database import create_pool, migrate
from server.orders import health as health_module
from server.orders.health import OrderHealth
from tests.support.database import scratch_database


@pytest_asyncio.fixture
async def pool(tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_database(tmp_path) as url:
        pool: asyncpg.Pool = await create_pool(url, max_size=2)
        await migrate(pool, "orders")
        yield pool
        await pool.close()


async def store(
    pool: asyncpg.Pool,
    state: str,
    *,
    updated_ago: float = 0.0,
    created_ago: float | None = None,
    flagged: bool = False,
    abandoned: bool = False,
) -> str:
    """An order as the projection stores it, last written `updated_ago` seconds ago."""
    order_id = f"ord_{uuid.uuid4().hex}"
    message = orders_pb2.Order(
        order_id=order_id,
        state=orders_pb2.OrderState.Value(f"ORDER_STATE_{state.upper()}"),
        customer_id="cust-1",
        request_id=order_id,
        attention_required=flagged,
    )
    await pool.execute(
        """INSERT INTO orders.orders
             (order_id, request_id, fingerprint, customer_id, state, version, message,
              created_at, updated_at)
           VALUES ($1, $1, 'fp', 'cust-1', $2, 1, $3,
                   now() - make_interval(secs => $4), now() - make_interval(secs => $5))""",
        order_id,
        orders_pb2.OrderState.Name(message.state),
        message.SerializeToString(),
        created_ago if created_ago is not None else updated_ago,
        updated_ago,
    )
    if abandoned:
        await pool.execute(
            """INSERT INTO orders.order_attention (order_id, run_id, workflow_status, holdings)
               VALUES ($1, 'run-1', 'Terminated', '{}')""",
            order_id,
        )
    return order_id


async def event(pool: asyncpg.Pool, order_id: str, state: str, after_creation: float) -> None:
    """A version of the order recorded `after_creation` seconds after it was placed."""
    await pool.execute(
        """INSERT INTO orders.order_events (order_id, version, state, recorded_at)
           SELECT order_id, 2, $2, created_at + make_interval(secs => $3)
             FROM orders.orders WHERE order_id = $1""",
        order_id,
        f"ORDER_STATE_{state.upper()}",
        after_creation,
    )


async def test_the_oldest_order_of_each_in_flight_state(pool: asyncpg.Pool) -> None:
    await store(pool, "paid", updated_ago=300)
    await store(pool, "paid", updated_ago=100)
    await store(pool, "reserved", updated_ago=50)
    await store(pool, "compensating", updated_ago=700, flagged=True)
    # Nothing will move an order whose workflow ended: it counts as needing attention.
    await store(pool, "pending", updated_ago=5000, abandoned=True, flagged=True)
    # Shipped and finished orders are not in flight.
    await store(pool, "shipped", updated_ago=9000)
    await store(pool, "delivered", updated_ago=9000)

    oldest = (await OrderHealth(pool).read()).oldest

    assert oldest.keys() == {
        "pending",
        "reserved",
        "paid",
        "shipping",
        "cancelling",
        "compensating",
    }
    assert oldest["paid"] == pytest.approx(300, abs=5)
    assert oldest["reserved"] == pytest.approx(50, abs=5)
    assert oldest["compensating"] == pytest.approx(700, abs=5)
    assert oldest["pending"] == oldest["shipping"] == oldest["cancelling"] == 0


async def test_orders_flagged_for_a_person_and_not_finished(pool: asyncpg.Pool) -> None:
    # A compensation keeps failing: the running workflow flagged the order.
    await store(pool, "compensating", flagged=True)
    await store(pool, "cancelling", flagged=True)
    await store(pool, "compensating")
    # Workflows ended outside the saga, noticed by the sweep.
    await store(pool, "paid", flagged=True, abandoned=True)
    await store(pool, "shipped", flagged=True, abandoned=True)
    await store(pool, "compensating", flagged=True, abandoned=True)
    # Put right since: finished, or the flag cleared.
    await store(pool, "cancelled", flagged=True, abandoned=True)
    await store(pool, "paid", abandoned=True)

    health = await OrderHealth(pool).check()

    assert health.attention == {"running": 2, "ended": 3}
    assert REGISTRY.get_sample_value("orders_attention_required", {"workflow": "running"}) == 2
    assert REGISTRY.get_sample_value("orders_attention_required", {"workflow": "ended"}) == 3
    assert REGISTRY.get_sample_value("orders_in_state_seconds_max", {"state": "compensating"}) >= 0


async def test_each_order_is_counted_once_when_it_reaches_the_shipping_deadline(
    pool: asyncpg.Pool,
) -> None:
    def counted(outcome: str) -> float:
        return REGISTRY.get_sample_value("orders_ship_deadline_total", {"outcome": outcome}) or 0.0

    before = {outcome: counted(outcome) for outcome in ("met", "missed", "ended")}
    health = OrderHealth(pool, ship_deadline=timedelta(seconds=2))
    # Placed before the first pass's mark: never counted by this process.
    await store(pool, "paid", created_ago=30)
    first = await health.check()
    assert first.deadlines == {"met": 0, "missed": 0, "ended": 0}

    # Placed 1.5 s ago: 2 s old half a second from now.
    in_time = await store(pool, "shipped", created_ago=1.5)
    await event(pool, in_time, "shipped", 1.0)
    late = await store(pool, "shipped", created_ago=1.5)
    await event(pool, late, "shipped", 3.0)
    declined = await store(pool, "failed", created_ago=1.5)
    await event(pool, declined, "compensating", 0.5)
    await event(pool, declined, "failed", 0.6)
    await store(pool, "paid", created_ago=1.5)  # still on its way
    # Cancelled after the deadline, never shipped: it missed it.
    cancelled_late = await store(pool, "cancelled", created_ago=1.5)
    await event(pool, cancelled_late, "cancelling", 2.5)
    # Not 2 s old by the next pass: counted by a later one.
    await store(pool, "pending", created_ago=0)

    await asyncio.sleep(1.0)
    second = await health.check()
    assert second.deadlines == {"met": 1, "missed": 3, "ended": 1}
    third = await health.check()
    assert third.deadlines == {"met": 0, "missed": 0, "ended": 0}

    assert counted("met") - before["met"] == 1
    assert counted("missed") - before["missed"] == 3
    assert counted("ended") - before["ended"] == 1


async def test_the_in_flight_ages_can_use_the_partial_index(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        # Only whether the index applies is asked: with a handful of rows the
        # planner would rightly prefer reading the table.
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {health_module._AGES}"))
        await conn.execute("RESET enable_seqscan")
    assert "orders_in_flight" in plan, plan
