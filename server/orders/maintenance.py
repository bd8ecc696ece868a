"""Upkeep of the order event log: one partition per day, kept for a while.

`order_events` (WatchOrder's history) is partitioned by day of
`recorded_at`, in UTC. Each pass creates the partitions of the coming days,
so that writes never find a day without one, and drops every partition whose
last day is older than the retention: dropping a day is instant, where
deleting its rows would churn the table and its indexes.

The orders service runs a pass at start and then every
ORDER_EVENTS_MAINTENANCE_SECONDS; `python -m server maintenance` runs one and
exits (a Kubernetes CronJob, deploy/kubernetes/maintenance.yaml). Passes
from several processes at once are safe: one does the work, the others skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from server.core.database import create_pool, migrate
from server.core.process import run as run_process
from server.core.settings import Settings

log = structlog.get_logger(__name__)

_LOCK = 0x6F657674  # "oevt": one maintenance pass at a time, across processes
# DDL waits at most this long for a lock, so that a pass stuck behind a long
# query never holds up the writers queued behind it; the next pass retries.
_LOCK_TIMEOUT = "5s"


@dataclass
class Upkeep:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    skipped: bool = False  # another process was doing it


def _day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def _partitions(conn: asyncpg.Connection) -> dict[str, tuple[datetime | None, datetime]]:
    """Each partition's bounds; a lower bound of MINVALUE is None."""
    rows = await conn.fetch(
        """SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'orders.order_events'::regclass"""
    )
    bounds: dict[str, tuple[datetime | None, datetime]] = {}
    for row in rows:
        values = re.findall(r"'([^']+)'", row["bound"])
        upper = datetime.fromisoformat(values[-1])
        lower = datetime.fromisoformat(values[0]) if len(values) == 2 else None
        bounds[row["name"]] = (lower, upper)
    return bounds


async def maintain_order_events(
    pool: asyncpg.Pool,
    *,
    retention_days: int,
    ahead_days: int,
    now: datetime | None = None,
) -> Upkeep:
    """Creates the partitions of the next `ahead_days` days; drops those past the retention."""
    today = _day(now or datetime.now(UTC))
    cutoff = today - timedelta(days=retention_days)
    upkeep = Upkeep()
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
            upkeep.skipped = True
            return upkeep
        try:
            # Bounds are printed in the session's time zone: read them in UTC.
            await conn.execute(f"SET TIME ZONE 'UTC'; SET lock_timeout = '{_LOCK_TIMEOUT}'")
            existing = await _partitions(conn)
            for offset in range(ahead_days + 1):
                start = today + timedelta(days=offset)
                end = start + timedelta(days=1)
                if any(
                    (lower is None or lower < end) and start < upper
                    for lower, upper in existing.values()
                ):
                    continue  # covered, by a day's partition or the rows from before days
                name = f"order_events_{start:%Y%m%d}"
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS orders.{name} PARTITION OF orders.order_events"
                    f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                )
                upkeep.created.append(name)
            for name, (_, upper) in sorted(existing.items()):
                if upper <= cutoff:
                    await conn.execute(f"DROP TABLE orders.{name}")
                    upkeep.dropped.append(name)
        finally:
            await conn.execute("RESET lock_timeout; RESET TIME ZONE")
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
    if upkeep.created or upkeep.dropped:
        log.info("order events maintained", created=upkeep.created, dropped=upkeep.dropped)
    return upkeep


async def maintain_periodically(pool: asyncpg.Pool, settings: Settings) -> None:
    """The orders service's loop: a pass now, then one every period, until cancelled."""
    while True:
        try:
            await maintain_order_events(
                pool,
                retention_days=settings.order_events_retention_days,
                ahead_days=settings.order_events_partitions_ahead_days,
            )
        except (OSError, asyncpg.PostgresError) as error:
            # A lock not granted in time, the database away: the next pass retries.
            log.warning("order events maintenance failed; will retry", error=str(error))
        await asyncio.sleep(settings.order_events_maintenance_seconds)


def start_maintenance(pool: asyncpg.Pool, settings: Settings) -> asyncio.Task[None] | None:
    if not settings.order_events_maintenance_seconds:
        return None
    return asyncio.create_task(maintain_periodically(pool, settings), name="order-events-upkeep")


async def stop_maintenance(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _once(settings: Settings) -> Upkeep:
    pool = await create_pool(settings.database_url_of("orders"), max_size=1, reset_sessions=True)
    try:
        # It may run before any orders service has created the schema.
        await migrate(pool, "orders")
        return await maintain_order_events(
            pool,
            retention_days=settings.order_events_retention_days,
            ahead_days=settings.order_events_partitions_ahead_days,
        )
    finally:
        await pool.close()


def main() -> None:
    """`python -m server maintenance`: one pass, then exit (server/core/process.py)."""
    upkeep = run_process("maintenance", _once, metrics=False, traced=False, logs_to_file=False)
    if upkeep.skipped:
        log.info("order events maintenance already running elsewhere")
