"""Writing the order projection: what the order workflow's `record_order` does.

The `orders` schema belongs to the order service; the order workflow is the
one writer of its projection tables, through this module alone. Each write
carries the workflow's version counter; a write older than the stored row is
dropped, every accepted version is appended to `order_events`, and the order
id is announced with NOTIFY so that watchers and read caches learn of it.

`order_events` is partitioned by the time a row is recorded, so its key
holds that time too and cannot by itself refuse a second row for a version
written again later: only a version stored as the newest is appended, which
makes each version appear once.

A write that Postgres refuses for its content (text it cannot store, a
broken constraint) can never succeed by retrying: it raises
`UnstorableOrder`, which the activity reports as non-retryable. Anything
else (a lost connection, a restarting server) is worth retrying.
"""

from __future__ import annotations

import asyncpg

from clients.proto.orders.v1 import orders_pb2

NOTIFY_CHANNEL = "order_events"

# What Postgres answers for content it will never accept.
_REFUSED_CONTENT = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


class UnstorableOrder(Exception):
    """Postgres refuses this version of the order for its content."""


class OrderProjection:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, order: orders_pb2.Order, version: int, fingerprint: str) -> bool:
        """Stores a version of an order; returns False if a newer one is stored."""
        try:
            return await self._record(order, version, fingerprint)
        except _REFUSED_CONTENT as error:
            raise UnstorableOrder(f"{type(error).__name__}: {error}") from error

    async def _record(self, order: orders_pb2.Order, version: int, fingerprint: str) -> bool:
        message = order.SerializeToString()
        state = orders_pb2.OrderState.Name(order.state)
        created = order.create_time.ToDatetime().astimezone()
        updated = order.update_time.ToDatetime().astimezone()
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await conn.fetchval(
                """INSERT INTO orders.orders AS o
                     (order_id, request_id, fingerprint, customer_id, state, version, message,
                      created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                   ON CONFLICT (order_id) DO UPDATE
                      SET state = EXCLUDED.state, version = EXCLUDED.version,
                          message = EXCLUDED.message, body = NULL,
                          updated_at = EXCLUDED.updated_at
                    WHERE o.version < EXCLUDED.version
                   RETURNING true""",
                order.order_id,
                order.request_id,
                fingerprint,
                order.customer_id,
                state,
                version,
                message,
                created,
                updated,
            )
            if stored:
                await conn.execute(
                    """INSERT INTO orders.order_events (order_id, version, state, message)
                       VALUES ($1, $2, $3, $4)
                       ON CONFLICT DO NOTHING""",
                    order.order_id,
                    version,
                    state,
                    message,
                )
                await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, order.order_id)
        return bool(stored)
