"""Order health: what the alerts watch that no step counts as it happens.

An order stuck between two steps, or flagged for a person, or slow to ship
shows in the projection, not in any counter of the steps. So every
ORDER_AUDIT_SECONDS (beside the sweep for abandoned orders) the orders
service reads the projection and publishes:

* `orders_in_state_seconds_max{state}`: for each state of an order in
  flight, how long the order that has been in it longest has been there
  (since its last write). Orders whose workflow ended outside the saga
  (`orders.order_attention`) are left out: nothing will move them, they are
  counted below, and one of them must not hide an order stuck later.
* `orders_attention_required{workflow}`: orders not finished and flagged
  `attention_required`. The flag is a field of the stored message, so it is
  read from the messages of the few orders that can carry it: those whose
  workflow ended outside the saga (`workflow="ended"`), and those being
  undone (CANCELLING, COMPENSATING), where a running workflow raises it
  while a compensation keeps failing (`workflow="running"`). An order
  flagged because a write of its projection was refused carries the flag
  from its next stored write on, in any state: it is counted only while
  being undone, since finding it elsewhere would mean reading every order
  not finished, those awaiting delivery included. The worker logs each
  refused write.
* `orders_ship_deadline_total{outcome}`: each order once, when it is
  SHIP_DEADLINE old: `met` if it had shipped by then, `ended` if it had
  been failed or cancelled instead, `missed` otherwise. The time-to-SHIPPED
  SLO counts `missed` against `met` plus `missed`. Its times are those the
  order events were recorded at; each front door counts every order, so
  take ratios, not sums across front doors.

Each is one grouped query over a small, indexed set: the orders in flight
(the partial index of migration 0008), the orders being undone or flagged,
and the orders that reached the deadline since the last pass. The first
pass of a process only marks where its deadline counts start.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import structlog
from google.protobuf import json_format
from prometheus_client import Counter, Gauge

from clients.proto.orders.v1 import orders_pb2
from server.orders.admission import IN_FLIGHT_STATES
from worker.model import TERMINAL_STATES

log = structlog.get_logger(__name__)

STATE_AGE = Gauge(
    "orders_in_state_seconds_max",
    "Seconds the oldest order in each in-flight state has been in it",
    ["state"],
)
ATTENTION = Gauge(
    "orders_attention_required",
    "Orders not finished and flagged attention_required",
    ["workflow"],
)
SHIP_DEADLINE_CHECKED = Counter(
    "orders_ship_deadline_total",
    "Orders that reached the shipping deadline's age, by whether they had shipped",
    ["outcome"],
)

# The time-to-SHIPPED objective: an order ships within this of being placed.
SHIP_DEADLINE = timedelta(seconds=60)

_UNDOING = ("ORDER_STATE_CANCELLING", "ORDER_STATE_COMPENSATING")
_FINISHED = tuple(orders_pb2.OrderState.Name(state) for state in TERMINAL_STATES)
_SHIPPED = "ORDER_STATE_SHIPPED"
# The first of these an order's events reach settles its deadline.
_OUTCOMES = (_SHIPPED, *_UNDOING, *_FINISHED)


def _label(state: str) -> str:
    return state.removeprefix("ORDER_STATE_").lower()


def _listed(states: tuple[str, ...] | list[str]) -> str:
    # Spelled out in the SQL, not passed as a parameter: only then does the
    # planner see that the query falls inside the partial index's predicate.
    return ", ".join(f"'{state}'" for state in states)


_AGES = f"""
    SELECT o.state, greatest(extract(epoch FROM now() - min(o.updated_at)), 0)::float8 AS oldest
      FROM orders.orders o
     WHERE o.state IN ({_listed(IN_FLIGHT_STATES)})
       AND NOT EXISTS (SELECT 1 FROM orders.order_attention a WHERE a.order_id = o.order_id)
     GROUP BY o.state"""

_FLAG_CARRIERS = f"""
    SELECT o.message, o.body, false AS ended
      FROM orders.orders o
     WHERE o.state IN ({_listed(_UNDOING)})
       AND NOT EXISTS (SELECT 1 FROM orders.order_attention a WHERE a.order_id = o.order_id)
    UNION ALL
    SELECT o.message, o.body, true AS ended
      FROM orders.order_attention a JOIN orders.orders o USING (order_id)
     WHERE o.state NOT IN ({_listed(_FINISHED)})"""

# Orders placed in [$1, $2), by the first outcome their events reached within
# $3 of their creation. The bounds on recorded_at that hold no column let
# Postgres skip the days of the event log that cannot hold them.
_DEADLINES = """
    SELECT CASE WHEN first.state IS NULL THEN 'missed'
                WHEN first.state = $4 THEN 'met'
                ELSE 'ended' END AS outcome,
           count(*) AS orders
      FROM orders.orders o
      LEFT JOIN LATERAL (
           SELECT e.state
             FROM orders.order_events e
            WHERE e.order_id = o.order_id
              AND e.recorded_at >= $1::timestamptz - interval '1 day'
              AND e.recorded_at <= $2::timestamptz + $3::interval
              AND e.recorded_at <= o.created_at + $3::interval
              AND e.state = ANY($5::text[])
            ORDER BY e.recorded_at
            LIMIT 1) AS first ON true
     WHERE o.created_at >= $1 AND o.created_at < $2
     GROUP BY 1"""


@dataclass
class Health:
    """What one pass read."""

    oldest: dict[str, float] = field(default_factory=dict)  # state label -> seconds
    attention: dict[str, int] = field(default_factory=dict)  # "ended", "running" -> orders
    deadlines: dict[str, int] = field(default_factory=dict)  # outcome -> orders


class OrderHealth:
    def __init__(self, pool: asyncpg.Pool, *, ship_deadline: timedelta = SHIP_DEADLINE) -> None:
        self._pool = pool
        self._ship_deadline = ship_deadline
        # Orders placed before this have had their deadline counted.
        self._due_since: datetime | None = None

    async def check(self) -> Health:
        """Reads the projection once and publishes what it found."""
        health = await self.read()
        for state, seconds in health.oldest.items():
            STATE_AGE.labels(state).set(seconds)
        for workflow, orders in health.attention.items():
            ATTENTION.labels(workflow).set(orders)
        for outcome, orders in health.deadlines.items():
            SHIP_DEADLINE_CHECKED.labels(outcome).inc(orders)
        return health

    async def read(self) -> Health:
        health = Health(
            oldest=dict.fromkeys(map(_label, IN_FLIGHT_STATES), 0.0),
            attention={"ended": 0, "running": 0},
        )
        async with self._pool.acquire() as conn:
            for row in await conn.fetch(_AGES):
                health.oldest[_label(row["state"])] = row["oldest"]
            for row in await conn.fetch(_FLAG_CARRIERS):
                if _flagged(row):
                    health.attention["ended" if row["ended"] else "running"] += 1
            health.deadlines = await self._deadlines(conn)
        return health

    async def _deadlines(self, conn: asyncpg.Connection) -> dict[str, int]:
        due_until: datetime = await conn.fetchval(
            "SELECT now() - $1::interval", self._ship_deadline
        )
        counts = dict.fromkeys(("met", "missed", "ended"), 0)
        if self._due_since is not None:
            for row in await conn.fetch(
                _DEADLINES,
                self._due_since,
                due_until,
                self._ship_deadline,
                _SHIPPED,
                list(_OUTCOMES),
            ):
                counts[row["outcome"]] = row["orders"]
        self._due_since = due_until
        return counts


def _flagged(row: asyncpg.Record) -> bool:
    if row["message"] is not None:
        return orders_pb2.Order.FromString(row["message"]).attention_required
    # Stored before orders were kept as protobuf (migration 0002).
    return json_format.Parse(row["body"], orders_pb2.Order()).attention_required


def start_health_checks(health: OrderHealth, every_seconds: float) -> asyncio.Task[None] | None:
    """Checks every `every_seconds` in the background (0: never)."""
    if every_seconds <= 0:
        return None

    async def loop() -> None:
        while True:
            try:
                await health.check()
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("order health check failed; retrying later", error=str(error))
            except Exception:
                # A bug must not end the checks for the life of the process.
                log.exception("order health check failed")
            await asyncio.sleep(every_seconds)

    return asyncio.create_task(loop(), name="order-health")


async def stop_health_checks(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
