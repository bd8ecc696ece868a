"""The order event log by day: the migration from one table, and the retention.

Migration 0004 turns `orders.order_events` into a table partitioned by day
while processes of the previous release keep writing to it; maintenance
creates the days ahead and drops the days past the retention.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from clients.proto.orders.v1 import orders_pb2
from server.core import database
from server.core.database import create_pool, load_migrations, migrate
from server.orders.maintenance import maintain_order_events
from server.orders.projection import OrderProjection
from server.orders.repository import OrderRepository
from tests.support.database import scratch_database

ORDERS_MIGRATIONS = database.MIGRATIONS / "orders"
# What the previous release's projection wrote, word for word.
OLD_EVENT_INSERT = """INSERT INTO orders.order_events (order_id, version, state, message)
                      VALUES ($1, $2, $3, $4)
                      ON CONFLICT DO NOTHING RETURNING true"""


def _order(order_id: str, state: int = orders_pb2.ORDER_STATE_PENDING) -> orders_pb2.Order:
    order = orders_pb2.Order(
        order_id=order_id, request_id=f"req-{order_id}", customer_id="cust-1", state=state
    )
    order.create_time.GetCurrentTime()
    order.update_time.GetCurrentTime()
    return order


@pytest_asyncio.fixture
async def pool(tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_database(tmp_path) as url:
        pool = await create_pool(url, max_size=6)
        yield pool
        await pool.close()


async def _partitions(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch(
        """SELECT inhrelid::regclass::text AS name FROM pg_inherits
            WHERE inhparent = 'orders.order_events'::regclass"""
    )
    return {row["name"].removeprefix("orders.") for row in rows}


async def test_the_log_is_partitioned_while_the_previous_release_writes(
    pool: asyncpg.Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tmp_path / "migrations"
    (before / "orders").mkdir(parents=True)
    for path in sorted(ORDERS_MIGRATIONS.glob("000[12]_*.sql")):
        shutil.copy(path, before / "orders")
    monkeypatch.setattr(database, "MIGRATIONS", before)
    assert await migrate(pool, "orders") == [1, 2]
    for version in range(3):
        await pool.fetchval(OLD_EVENT_INSERT, "ord_old", version, "PENDING", b"")

    # The previous release keeps writing through the whole migration.
    written: list[int] = []
    done = asyncio.Event()

    async def old_writer() -> None:
        version = 100
        while not done.is_set():
            assert await pool.fetchval(OLD_EVENT_INSERT, "ord_busy", version, "PENDING", b"")
            written.append(version)
            version += 1
            await asyncio.sleep(0)

    async def until_written(count: int) -> None:
        while True:
            if len(written) >= count:
                return
            await asyncio.sleep(0.01)

    writer = asyncio.create_task(old_writer())
    await until_written(5)
    monkeypatch.setattr(database, "MIGRATIONS", ORDERS_MIGRATIONS.parent)
    try:
        assert (await migrate(pool, "orders"))[:2] == [3, 4]
        await until_written(len(written) + 5)  # and after it
    finally:
        done.set()
        await writer

    assert (
        await pool.fetchval(
            "SELECT partstrat::text FROM pg_partitioned_table"
            " WHERE partrelid = 'orders.order_events'::regclass"
        )
        == "r"
    )
    key = await pool.fetchval(
        """SELECT pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = 'orders.order_events'::regclass AND contype = 'p'"""
    )
    assert key == "PRIMARY KEY (order_id, version, recorded_at)"
    assert "order_events_before_days" in await _partitions(pool)
    repository = OrderRepository(pool)
    # Nothing written before, during or after the migration is lost.
    assert [v for v, _ in await repository.versions_after("ord_old", -1)] == [0, 1, 2]
    assert [v for v, _ in await repository.versions_after("ord_busy", 0)] == written
    # The previous release's repeat of a write it made lands a second time
    # (its recorded_at differs); readers see each version once.
    await pool.fetchval(OLD_EVENT_INSERT, "ord_old", 1, "PENDING", b"")
    assert [v for v, _ in await repository.versions_after("ord_old", -1)] == [0, 1, 2]

    # This release: one row per version, however often a version is written.
    projection = OrderProjection(pool)
    order = _order("ord_new")
    assert await projection.record(order, 1, "fp")
    assert not await projection.record(order, 1, "fp")
    order.state = orders_pb2.ORDER_STATE_PAID
    assert await projection.record(order, 2, "fp")
    assert not await projection.record(order, 1, "fp")
    assert [v for v, _ in await repository.versions_after("ord_new", 0)] == [1, 2]


async def test_days_past_the_retention_are_dropped_and_the_rest_kept(pool: asyncpg.Pool) -> None:
    assert await migrate(pool, "orders") == [m.version for m in load_migrations("orders")]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    created_by_migration = await _partitions(pool)
    # The rows from before days, and a week ahead of days.
    assert created_by_migration == {"order_events_before_days"} | {
        f"order_events_{today + timedelta(days=d):%Y%m%d}" for d in range(1, 8)
    }
    projection = OrderProjection(pool)
    assert await projection.record(_order("ord_today"), 1, "fp")

    # Ten days on: the days ahead follow, nothing is old enough to go.
    upkeep = await maintain_order_events(
        pool, retention_days=30, ahead_days=7, now=today + timedelta(days=10, hours=5)
    )
    assert upkeep.created == [
        f"order_events_{today + timedelta(days=d):%Y%m%d}" for d in range(10, 18)
    ]
    assert upkeep.dropped == []
    insert = "INSERT INTO orders.order_events (order_id, version, state, recorded_at)"
    insert += " VALUES ($1, 1, 'PENDING', $2)"
    await pool.execute(insert, "ord_day_12", today + timedelta(days=12, hours=1))
    await pool.execute(insert, "ord_day_16", today + timedelta(days=16, hours=1))

    # 45 days on with 30 kept: every day before day 15 goes, days 15 on stay.
    upkeep = await maintain_order_events(
        pool, retention_days=30, ahead_days=7, now=today + timedelta(days=45)
    )
    assert "order_events_before_days" in upkeep.dropped
    assert f"order_events_{today + timedelta(days=14):%Y%m%d}" in upkeep.dropped
    assert f"order_events_{today + timedelta(days=15):%Y%m%d}" not in upkeep.dropped
    left = await _partitions(pool)
    assert "order_events_before_days" not in left
    assert f"order_events_{today + timedelta(days=15):%Y%m%d}" in left
    assert f"order_events_{today + timedelta(days=52):%Y%m%d}" in left
    stored = {r["order_id"] for r in await pool.fetch("SELECT order_id FROM orders.order_events")}
    assert stored == {"ord_day_16"}
    # The projection itself is not the log: the order is still there.
    assert await OrderRepository(pool).get("ord_today") is not None

    # A second pass has nothing to do.
    again = await maintain_order_events(
        pool, retention_days=30, ahead_days=7, now=today + timedelta(days=45)
    )
    assert (again.created, again.dropped) == ([], [])


async def test_passes_at_once_create_each_day_once(pool: asyncpg.Pool) -> None:
    await migrate(pool, "orders")
    passes = await asyncio.gather(
        *(maintain_order_events(pool, retention_days=30, ahead_days=30) for _ in range(3))
    )
    # Today is in the rows from before days, days 1-7 came with the migration.
    assert sorted(name for p in passes for name in p.created) == sorted(
        f"order_events_{datetime.now(UTC) + timedelta(days=d):%Y%m%d}" for d in range(8, 31)
    )
