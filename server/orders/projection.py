"""Writing the order projection: what the order workflow's `record_order` does.

The `orders` schema belongs to the order service; the order workflow is the
one writer of its projection tables, through this module alone. Each write
carries the workflow's version counter; a write older than the stored row is
dropped, every accepted version is appended to `order_events`, and the order
id is announced with NOTIFY so that watchers and read caches learn of it.
Each write also copies the fields the operators search by
(`attention_required`, `failure_reason`) into columns of their own.

`order_events` is partitioned by the time a row is recorded, so its key
holds that time too and cannot by itself refuse a second row for a version
written again later: only a version stored as the newest is appended, which
makes each version appear once.

Each order belongs to one workflow run (`run_id`): the one the front door
started, or, if the front door never wrote the order, the first run to write
it. A write by another run raises `ForeignRun` and changes nothing, so a run
started under an order's id by anyone but the front door (a copy of its
start, sent again after it ended) cannot rewrite the order.

A write that Postgres refuses for its content (text it cannot store, a
broken constraint) can never succeed by retrying: it raises
`UnstorableOrder`, which the activity reports as non-retryable. Anything
else (a lost connection, a restarting server) is worth retrying.
"""

from __future__ import annotations

import asyncpg

from clients.proto.orders.v1 import orders_pb2
from worker.model import TERMINAL_STATES

NOTIFY_CHANNEL = "order_events"
# The customer of every write of orders.orders, by its trigger (migration 0012).
CUSTOMERS_CHANNEL = "order_customers"

# What Postgres answers for content it will never accept.
_REFUSED_CONTENT = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


class UnstorableOrder(Exception):
    """Postgres refuses this version of the order for its content."""


class ForeignRun(Exception):
    """The order belongs to another workflow run than the one writing it."""


# An order stored before runs were recorded may be claimed by its own run's
# next write only while it is still in progress: a finished one has no run
# left to write it, so a claim could only come from a run started afresh.
_FINISHED = tuple(orders_pb2.OrderState.Name(state) for state in TERMINAL_STATES)


class OrderProjection:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self,
        order: orders_pb2.Order,
        version: int,
        fingerprint: str,
        run_id: str | None = None,
        *,
        changes_fenced: bool = False,
    ) -> bool:
        """Stores a version of an order, written by workflow run `run_id`.

        Returns False if a newer version is stored; raises ForeignRun if the
        order belongs to another run. Without a run id (a front door of an
        earlier version), the write is not checked. `changes_fenced` marks a
        new order whose workflow takes the fences of server/orders/changes.py;
        only the first write of an order sets it.
        """
        try:
            try:
                return await self._record(order, version, fingerprint, run_id, changes_fenced)
            except asyncpg.UniqueViolationError:
                # The first writes of an order, the front door's and its
                # workflow's, ran at once: the one that lost found the other's
                # row through the (customer_id, request_id) index, which ON
                # CONFLICT does not arbitrate. Written again, it meets that
                # row on order_id, and the version rule decides as ever.
                return await self._record(order, version, fingerprint, run_id, changes_fenced)
        except _REFUSED_CONTENT as error:
            raise UnstorableOrder(f"{type(error).__name__}: {error}") from error

    async def store_first(
        self, order: orders_pb2.Order, version: int, fingerprint: str, run_id: str | None
    ) -> bool:
        """A run's first write of its new order; False if the order was stored for it already.

        The front door stores the order it accepted, for the run it started,
        and most often before that run's first task: writing it again would
        only repeat it under a newer version, for every watcher and cache to
        read again. So a row of this run is left as it is; any other case
        (the front door's write not made yet, or never: it crashed; a row of
        an earlier front door, without a run; another run's order) is written
        as every write is, which stores the order, claims it, or raises
        ForeignRun.
        """
        owner = await self._pool.fetchval(
            "SELECT run_id FROM orders.orders WHERE order_id = $1", order.order_id
        )
        if owner is not None and owner == run_id:
            return False
        return await self.record(order, version, fingerprint, run_id)

    async def _record(
        self,
        order: orders_pb2.Order,
        version: int,
        fingerprint: str,
        run_id: str | None,
        changes_fenced: bool,
    ) -> bool:
        message = order.SerializeToString()
        state = orders_pb2.OrderState.Name(order.state)
        created = order.create_time.ToDatetime().astimezone()
        updated = order.update_time.ToDatetime().astimezone()
        # One statement, so one round trip and atomic without a transaction:
        # the row, its event (only for a version stored as the newest) and
        # the NOTIFY (sent at its commit, and only if the row was stored).
        stored = await self._pool.fetchval(
            """WITH stored AS (
                 INSERT INTO orders.orders AS o
                   (order_id, request_id, fingerprint, customer_id, state, version, message,
                    created_at, updated_at, run_id, changes_fenced,
                    attention_required, failure_reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13, $14)
                 ON CONFLICT (order_id) DO UPDATE
                    SET state = EXCLUDED.state, version = EXCLUDED.version,
                        message = EXCLUDED.message, body = NULL,
                        updated_at = EXCLUDED.updated_at,
                        run_id = coalesce(o.run_id, EXCLUDED.run_id),
                        attention_required = EXCLUDED.attention_required,
                        failure_reason = EXCLUDED.failure_reason
                  WHERE o.version < EXCLUDED.version
                    AND (EXCLUDED.run_id IS NULL
                         OR o.run_id = EXCLUDED.run_id
                         OR (o.run_id IS NULL
                             AND (o.version = 0 OR o.state <> ALL($11::text[]))))
                 RETURNING o.order_id
               ),
               logged AS (
                 INSERT INTO orders.order_events (order_id, version, state, message)
                 SELECT order_id, $6, $5, $7 FROM stored
                 ON CONFLICT DO NOTHING
               )
               SELECT true FROM stored, LATERAL (SELECT pg_notify($15, stored.order_id)) AS told""",
            order.order_id,
            order.request_id,
            fingerprint,
            order.customer_id,
            state,
            version,
            message,
            created,
            updated,
            run_id,
            list(_FINISHED),
            changes_fenced,
            # Copies of two fields of the message, for the operators'
            # search (migration 0010).
            order.attention_required,
            order.failure.reason or None,
            NOTIFY_CHANNEL,
        )
        if stored:
            return True
        # Not stored: a newer version was, or the order is another run's, or
        # (a new order) the front door's row came second.
        if run_id is not None:
            owner = await self._pool.fetchrow(
                "SELECT run_id, version, state FROM orders.orders WHERE order_id = $1",
                order.order_id,
            )
            if owner is not None and not _may_write(owner, run_id):
                raise ForeignRun(
                    f"order {order.order_id} belongs to workflow run {owner['run_id']},"
                    f" not to {run_id}"
                )
        if changes_fenced:
            # Its workflow wrote it first (the front door's write came
            # second): the order is fenced all the same, since it is that
            # workflow that takes the fences.
            await self._pool.execute(
                "UPDATE orders.orders SET changes_fenced = true"
                " WHERE order_id = $1 AND NOT changes_fenced",
                order.order_id,
            )
        return False


def _may_write(owner: asyncpg.Record, run_id: str) -> bool:
    """Whether run `run_id` may write an order stored as `owner` (the SQL's rule)."""
    if owner["run_id"] is not None:
        return bool(owner["run_id"] == run_id)
    return bool(owner["version"] == 0 or owner["state"] not in _FINISHED)
