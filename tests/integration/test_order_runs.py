"""One order, one run: the projection's claim, whatever crashed between which two steps."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from clients.proto.orders.v1 import orders_pb2
from server.core.database import create_pool, migrate
from server.orders.changes import OrderChanges, Verdict
from server.orders.projection import ForeignRun, OrderProjection
from tests.support.database import scratch_database
from tests.workflow_unit.harness import order_input
from worker.model import new_order


@pytest_asyncio.fixture
async def projection(tmp_path: Path) -> AsyncIterator[OrderProjection]:
    async with scratch_database(tmp_path) as url:
        pool: asyncpg.Pool = await create_pool(url, max_size=4)
        await migrate(pool, "orders")
        yield OrderProjection(pool)
        await pool.close()


def order(
    state: orders_pb2.OrderState.ValueType = orders_pb2.ORDER_STATE_PENDING,
) -> orders_pb2.Order:
    message = new_order(order_input(order_id=f"ord_{uuid.uuid4().hex}"), datetime.now(UTC))
    message.state = state
    return message


async def test_the_front_door_crashed_before_storing_the_order_the_run_claims_it(
    projection: OrderProjection,
) -> None:
    accepted = order()
    # The workflow's first write comes first: the front door died after starting it.
    assert await projection.record(accepted, 5000, "fp", run_id="run-a")
    # The front door's write, late or repeated, changes nothing and refuses nothing.
    assert not await projection.record(accepted, 0, "fp", run_id="run-a")
    assert await projection.record(accepted, 6000, "fp", run_id="run-a")
    with pytest.raises(ForeignRun):
        await projection.record(accepted, 9000, "fp", run_id="run-b")


async def test_a_second_run_of_an_order_the_front_door_stored_is_refused(
    projection: OrderProjection,
) -> None:
    accepted = order()
    assert await projection.record(accepted, 0, "fp", run_id="run-a")
    with pytest.raises(ForeignRun):
        await projection.record(accepted, 1000, "fp", run_id="run-b")
    assert await projection.record(accepted, 1000, "fp", run_id="run-a")


async def test_an_order_stored_before_runs_were_recorded(projection: OrderProjection) -> None:
    # Written by a front door of the earlier release: no run.
    running, finished = order(), order(orders_pb2.ORDER_STATE_DELIVERED)
    for message in (running, finished):
        assert await projection.record(message, 7, "fp")
    # Its own run, still going, claims it with its next write...
    assert await projection.record(running, 8, "fp", run_id="run-a")
    # ...but a finished one has no run left: a run started afresh cannot claim it.
    with pytest.raises(ForeignRun):
        await projection.record(finished, 8, "fp", run_id="run-z")


async def test_the_front_door_and_the_workflow_writing_an_order_at_once_both_succeed(
    projection: OrderProjection,
) -> None:
    """The first writes of one order race; neither is refused for the other's row."""
    for _ in range(30):
        accepted = order()
        working = orders_pb2.Order()
        working.CopyFrom(accepted)
        working.state = orders_pb2.ORDER_STATE_RESERVED
        first, second = await asyncio.gather(
            projection.record(accepted, 0, "fp", run_id="run-a", changes_fenced=True),
            projection.record(working, 1000, "fp", run_id="run-a"),
        )
        assert second  # the workflow's version is never dropped
        assert first in (True, False)
        # Whichever came first, the order is fenced (server/orders/changes.py).
        fenced = await projection._pool.fetchval(
            "SELECT changes_fenced FROM orders.orders WHERE order_id = $1", accepted.order_id
        )
        assert fenced


async def test_an_order_its_workflow_wrote_first_is_fenced_by_the_front_doors_write(
    projection: OrderProjection,
) -> None:
    accepted = order()
    working = orders_pb2.Order()
    working.CopyFrom(accepted)
    working.state = orders_pb2.ORDER_STATE_RESERVED
    assert await projection.record(working, 1000, "fp", run_id="run-a")
    assert not await projection.record(accepted, 0, "fp", run_id="run-a", changes_fenced=True)
    changes = OrderChanges(projection._pool)
    assert await changes.change_address(accepted.order_id, accepted.shipping_address) is (
        Verdict.ACCEPTED
    )


async def test_only_a_version_stored_as_the_newest_is_logged_and_announced(
    projection: OrderProjection,
) -> None:
    from server.orders.projection import NOTIFY_CHANNEL

    pool = projection._pool
    heard: list[str] = []
    listener = await pool.acquire()

    def hear(*args: object) -> None:
        heard.append(str(args[3]))

    await listener.add_listener(NOTIFY_CHANNEL, hear)
    try:
        accepted = order()
        assert await projection.record(accepted, 10, "fp", run_id="run-a")
        assert not await projection.record(accepted, 5, "fp", run_id="run-a")  # older
        assert not await projection.record(accepted, 10, "fp", run_id="run-a")  # again
        with pytest.raises(ForeignRun):
            await projection.record(accepted, 20, "fp", run_id="run-b")
        accepted.state = orders_pb2.ORDER_STATE_RESERVED
        assert await projection.record(accepted, 30, "fp", run_id="run-a")

        logged = await pool.fetch(
            "SELECT version, state FROM orders.order_events WHERE order_id = $1 ORDER BY version",
            accepted.order_id,
        )
        assert [(row["version"], row["state"]) for row in logged] == [
            (10, "ORDER_STATE_PENDING"),
            (30, "ORDER_STATE_RESERVED"),
        ]
        stored = await pool.fetchrow(
            "SELECT version, state, run_id FROM orders.orders WHERE order_id = $1",
            accepted.order_id,
        )
        assert tuple(stored) == (30, "ORDER_STATE_RESERVED", "run-a")
        for _ in range(50):  # a NOTIFY reaches its listener after the commit
            if len(heard) >= 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # time for any third, which must not come
        assert heard == [accepted.order_id, accepted.order_id]
    finally:
        await listener.remove_listener(NOTIFY_CHANNEL, hear)
        await pool.release(listener)


async def test_a_burst_of_writes_of_one_order_keeps_the_newest_and_logs_each_stored_once(
    projection: OrderProjection,
) -> None:
    """Twenty versions written at once, in no order: each write is one statement, no transaction."""
    pool = projection._pool
    accepted = order()
    assert await projection.record(accepted, 0, "fp", run_id="run-a")
    versions = list(range(1, 21))
    random.shuffle(versions)
    stored = await asyncio.gather(
        *(projection.record(accepted, v, "fp", run_id="run-a") for v in versions)
    )
    row = await pool.fetchrow(
        "SELECT version, run_id FROM orders.orders WHERE order_id = $1", accepted.order_id
    )
    assert tuple(row) == (20, "run-a")
    logged = await pool.fetch(
        "SELECT version FROM orders.order_events WHERE order_id = $1", accepted.order_id
    )
    taken = sorted(v for v, won in zip(versions, stored, strict=True) if won)
    # Exactly the writes that reported success left an event, once each.
    assert sorted(r["version"] for r in logged) == [0, *taken]
    assert 20 in taken


async def _stored(projection: OrderProjection, order_id: str) -> tuple[object, ...]:
    row = await projection._pool.fetchrow(
        "SELECT version, run_id FROM orders.orders WHERE order_id = $1", order_id
    )
    events = await projection._pool.fetchval(
        "SELECT count(*) FROM orders.order_events WHERE order_id = $1", order_id
    )
    return (*row, events)


async def test_a_runs_first_write_of_an_order_the_front_door_stored_for_it_writes_nothing(
    projection: OrderProjection,
) -> None:
    accepted = order()
    assert await projection.record(accepted, 0, "fp", run_id="run-a", changes_fenced=True)

    assert not await projection.store_first(accepted, 3000, "fp", run_id="run-a")
    assert await _stored(projection, accepted.order_id) == (0, "run-a", 1)  # no new version


async def test_a_runs_first_write_stores_claims_or_refuses_as_any_write(
    projection: OrderProjection,
) -> None:
    # The front door's write not made (yet): the run stores the order.
    unwritten = order()
    assert await projection.store_first(unwritten, 3000, "fp", run_id="run-a")
    assert await _stored(projection, unwritten.order_id) == (3000, "run-a", 1)
    assert not await projection.record(unwritten, 0, "fp", run_id="run-a")  # the late one

    # A row of an earlier front door, without a run: claimed, under the new version.
    unclaimed = order()
    assert await projection.record(unclaimed, 0, "fp")
    assert await projection.store_first(unclaimed, 3000, "fp", run_id="run-a")
    assert await _stored(projection, unclaimed.order_id) == (3000, "run-a", 2)

    # Another run's order: refused, and left as it was.
    theirs = order()
    assert await projection.record(theirs, 0, "fp", run_id="run-a")
    with pytest.raises(ForeignRun):
        await projection.store_first(theirs, 3000, "fp", run_id="run-b")
    assert await _stored(projection, theirs.order_id) == (0, "run-a", 1)
