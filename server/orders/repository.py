"""The order projection in the `orders` schema.

The worker writes it (`record`), the front door reads it. Each write carries
the workflow's version counter; a write older than the stored row is dropped,
and every accepted version is appended to `order_events` and announced with
NOTIFY so that watchers wake up.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from google.protobuf import json_format

from clients.proto.orders.v1 import orders_pb2

NOTIFY_CHANNEL = "order_events"


@dataclass(frozen=True)
class StoredOrder:
    order: orders_pb2.Order
    version: int
    fingerprint: str


def _to_json(order: orders_pb2.Order) -> str:
    return json_format.MessageToJson(order, preserving_proto_field_name=True, indent=None)


def _from_json(body: str) -> orders_pb2.Order:
    return json_format.Parse(body, orders_pb2.Order())


def _stored(row: asyncpg.Record | None) -> StoredOrder | None:
    if row is None:
        return None
    return StoredOrder(_from_json(row["body"]), row["version"], row["fingerprint"])


@dataclass(frozen=True)
class PageCursor:
    """Where a page of ListOrders ends: the last order's sort key."""

    created_at: datetime
    order_id: str


class OrderRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, order: orders_pb2.Order, version: int, fingerprint: str) -> bool:
        """Stores a version of an order; returns False if a newer one is stored."""
        body = _to_json(order)
        state = orders_pb2.OrderState.Name(order.state)
        created = order.create_time.ToDatetime().astimezone()
        updated = order.update_time.ToDatetime().astimezone()
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await conn.fetchval(
                """INSERT INTO orders.orders AS o
                     (order_id, request_id, fingerprint, customer_id, state, version, body,
                      created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
                   ON CONFLICT (order_id) DO UPDATE
                      SET state = EXCLUDED.state, version = EXCLUDED.version,
                          body = EXCLUDED.body, updated_at = EXCLUDED.updated_at
                    WHERE o.version < EXCLUDED.version
                   RETURNING true""",
                order.order_id,
                order.request_id,
                fingerprint,
                order.customer_id,
                state,
                version,
                body,
                created,
                updated,
            )
            inserted = await conn.fetchval(
                """INSERT INTO orders.order_events (order_id, version, state, body)
                   VALUES ($1, $2, $3, $4::jsonb)
                   ON CONFLICT DO NOTHING RETURNING true""",
                order.order_id,
                version,
                state,
                body,
            )
            if inserted:
                await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, order.order_id)
        return bool(stored)

    async def get(self, order_id: str) -> StoredOrder | None:
        return _stored(
            await self._pool.fetchrow(
                "SELECT body, version, fingerprint FROM orders.orders WHERE order_id = $1", order_id
            )
        )

    async def get_by_request_id(self, request_id: str) -> StoredOrder | None:
        return _stored(
            await self._pool.fetchrow(
                "SELECT body, version, fingerprint FROM orders.orders WHERE request_id = $1",
                request_id,
            )
        )

    async def versions_after(
        self, order_id: str, version: int
    ) -> list[tuple[int, orders_pb2.Order]]:
        rows = await self._pool.fetch(
            """SELECT version, body FROM orders.order_events
                WHERE order_id = $1 AND version > $2 ORDER BY version""",
            order_id,
            version,
        )
        return [(row["version"], _from_json(row["body"])) for row in rows]

    async def page(
        self,
        *,
        customer_id: str,
        states: list[str],
        limit: int,
        after: PageCursor | None,
    ) -> list[tuple[orders_pb2.Order, PageCursor]]:
        """A page of orders, newest first, strictly after `after`."""
        rows = await self._pool.fetch(
            """SELECT body, created_at, order_id FROM orders.orders
                WHERE ($1 = '' OR customer_id = $1)
                  AND (cardinality($2::text[]) = 0 OR state = ANY($2::text[]))
                  AND ($3::timestamptz IS NULL OR (created_at, order_id) < ($3, $4))
                ORDER BY created_at DESC, order_id DESC
                LIMIT $5""",
            customer_id,
            states,
            after.created_at if after else None,
            after.order_id if after else "",
            limit,
        )
        return [
            (_from_json(row["body"]), PageCursor(row["created_at"], row["order_id"]))
            for row in rows
        ]


def encode_cursor(cursor: PageCursor, filter_key: str) -> str:
    raw = json.dumps({"t": cursor.created_at.isoformat(), "id": cursor.order_id, "f": filter_key})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, filter_key: str) -> PageCursor:
    """Raises ValueError when the token is malformed or made for other filters."""
    raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    if raw.get("f") != filter_key:
        raise ValueError("page_token was made for other filters")
    return PageCursor(datetime.fromisoformat(raw["t"]), str(raw["id"]))
