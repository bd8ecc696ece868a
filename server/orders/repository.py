"""Reading the order projection in the `orders` schema.

The order workflow writes it (server/orders/projection.py); the front door
reads it here. Orders are stored as protobuf bytes; rows from before that
change hold protobuf JSON instead, and are read from it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

import asyncpg
from google.protobuf import json_format

from clients.proto.orders.v1 import orders_pb2
from server.core.validation import Violations
from server.orders.changes import with_changes


@dataclass(frozen=True)
class StoredOrder:
    order: orders_pb2.Order
    version: int
    fingerprint: str

    @cached_property
    def get_order_answer(self) -> bytes:
        """GetOrder's basic answer, serialized once for as long as this version is cached.

        Read many times and changed a few, an order is answered as these
        bytes (the call sends them as they are) rather than copied into a
        response and serialized on every call.
        """
        return orders_pb2.GetOrderResponse(order=self.order).SerializeToString()


# What a read selects: the stored order, and the changes accepted since its
# workflow last wrote it (server/orders/changes.py).
_ORDER = "message, body, requested_address, cancel_requested_at IS NOT NULL AS cancelled"


def _order(row: asyncpg.Record) -> orders_pb2.Order:
    message = row["message"]
    if message is not None:
        order = orders_pb2.Order.FromString(message)
    else:
        order = json_format.Parse(row["body"], orders_pb2.Order())
    return with_changes(order, row["requested_address"], row["cancelled"])


def _as_seen(row: asyncpg.Record) -> bytes | orders_pb2.Order:
    """The row's stored protobuf bytes if a reader sees the order as stored; else the order.

    The bytes are the order as its workflow wrote it; they are not what a
    reader sees when the row holds JSON (before 0002) or changes accepted
    since (`with_changes`), and then the order is read as `_order` reads it.
    """
    message = row["message"]
    if message is not None and row["requested_address"] is None and not row["cancelled"]:
        return bytes(message)
    return _order(row)


def _stored(row: asyncpg.Record | None) -> StoredOrder | None:
    if row is None:
        return None
    return StoredOrder(_order(row), row["version"], row["fingerprint"])


@dataclass(frozen=True)
class SearchFilters:
    """What the operators' search asks for (OperatorService.SearchOrders); each set one holds."""

    states: list[str]
    customer_id: str = ""
    # Unchanged for at least this long (by updated_at).
    min_age: timedelta | None = None
    attention_only: bool = False
    failure_reason: str = ""
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True)
class PageCursor:
    """Where a page of ListOrders ends: the last order's sort key."""

    created_at: datetime
    order_id: str


class OrderRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def get(self, order_id: str) -> StoredOrder | None:
        return _stored(
            await self._pool.fetchrow(
                f"""SELECT {_ORDER}, version, fingerprint FROM orders.orders
                     WHERE order_id = $1""",
                order_id,
            )
        )

    async def get_by_request_id(self, customer_id: str, request_id: str) -> StoredOrder | None:
        """The customer's order placed with `request_id`, whatever scheme made its id."""
        return _stored(
            await self._pool.fetchrow(
                f"""SELECT {_ORDER}, version, fingerprint FROM orders.orders
                     WHERE customer_id = $1 AND request_id = $2""",
                customer_id,
                request_id,
            )
        )

    async def attention(self, order_id: str) -> tuple[str, list[str]] | None:
        """How the order's workflow ended outside the saga, and what the order held then.

        None unless the order was noticed so (server/orders/abandoned.py).
        """
        row = await self._pool.fetchrow(
            "SELECT workflow_status, holdings FROM orders.order_attention WHERE order_id = $1",
            order_id,
        )
        return (row["workflow_status"], list(row["holdings"])) if row is not None else None

    async def versions_after(
        self, order_id: str, version: int
    ) -> list[tuple[int, orders_pb2.Order]]:
        # A version may be in the log twice, written by a release from before
        # the log was partitioned by day (0004) while the new one rolled out.
        # Each shows the changes accepted for the order as they stand now
        # (server/orders/changes.py), as a read of the order does: a watcher
        # that started after a cancellation was accepted, and one that
        # started before, then see the same states from there on.
        rows = await self._pool.fetch(
            """SELECT DISTINCT ON (version) e.version, e.message, e.body,
                      o.requested_address, coalesce(o.cancelled, false) AS cancelled
                 FROM orders.order_events e
                 LEFT JOIN LATERAL (
                      SELECT requested_address, cancel_requested_at IS NOT NULL AS cancelled
                        FROM orders.orders WHERE order_id = $1) o ON true
                WHERE e.order_id = $1 AND e.version > $2
                ORDER BY e.version, e.recorded_at""",
            order_id,
            version,
        )
        return [(row["version"], _order(row)) for row in rows]

    async def page(
        self,
        *,
        customer_id: str,
        states: list[str],
        limit: int,
        after: PageCursor | None,
    ) -> list[tuple[bytes | orders_pb2.Order, PageCursor]]:
        """A page of orders, newest first, strictly after `after`.

        Each order is its stored bytes when they are what a reader sees, and
        the order read from its row otherwise: stored as JSON, or with changes
        accepted since its workflow last wrote it (`_as_seen`). As in
        `search`, only the filters given are in the query, so that the planner
        sees `customer_id = $1` and pages through that customer's index
        whatever plan it keeps for the statement.
        """
        where: list[str] = []
        args: list[object] = []
        if customer_id:
            args.append(customer_id)
            where.append(f"customer_id = ${len(args)}")
        if states:
            args.append(states)
            where.append(f"state = ANY(${len(args)}::text[])")
        if after is not None:
            args += [after.created_at, after.order_id]
            where.append(f"(created_at, order_id) < (${len(args) - 1}, ${len(args)})")
        rows = await self._pool.fetch(
            f"""SELECT {_ORDER}, created_at, order_id FROM orders.orders
                 WHERE {" AND ".join(where) or "true"}
                ORDER BY created_at DESC, order_id DESC
                LIMIT ${len(args) + 1}""",
            *args,
            limit,
        )
        return [(_as_seen(row), PageCursor(row["created_at"], row["order_id"])) for row in rows]

    async def search(
        self, filters: SearchFilters, *, limit: int, after: PageCursor | None
    ) -> list[tuple[orders_pb2.Order, PageCursor]]:
        """A page of the orders every filter holds for, newest first, strictly after `after`.

        Only the filters given are in the query, so that the planner sees, for
        instance, `attention_required` alone and picks its partial index
        (migration 0011), whatever plan it keeps for the statement.
        """
        where: list[str] = []
        args: list[object] = []

        def holds(condition: str, *values: object) -> None:
            numbers = [f"${len(args) + i + 1}" for i in range(len(values))]
            where.append(condition.format(*numbers))
            args.extend(values)

        if filters.customer_id:
            holds("customer_id = {}", filters.customer_id)
        if filters.states:
            holds("state = ANY({}::text[])", filters.states)
        if filters.min_age:
            holds("updated_at <= now() - {}::interval", filters.min_age)
        if filters.attention_only:
            holds("attention_required")
        if filters.failure_reason:
            holds("failure_reason = {}", filters.failure_reason)
        if filters.created_after is not None:
            holds("created_at >= {}", filters.created_after)
        if filters.created_before is not None:
            holds("created_at < {}", filters.created_before)
        if after is not None:
            holds("(created_at, order_id) < ({}, {})", after.created_at, after.order_id)
        rows = await self._pool.fetch(
            f"""SELECT {_ORDER}, created_at, order_id FROM orders.orders
                 WHERE {" AND ".join(where) or "true"}
                ORDER BY created_at DESC, order_id DESC
                LIMIT ${len(args) + 1}""",
            *args,
            limit,
        )
        return [(_order(row), PageCursor(row["created_at"], row["order_id"])) for row in rows]

    async def state_changes(self, order_id: str) -> list[tuple[int, datetime]]:
        """Each change of the order's state in its event log, oldest first: (state, when)."""
        rows = await self._pool.fetch(
            """SELECT DISTINCT ON (version) version, state, recorded_at
                 FROM orders.order_events
                WHERE order_id = $1 ORDER BY version, recorded_at""",
            order_id,
        )
        changes: list[tuple[int, datetime]] = []
        for row in rows:
            state = orders_pb2.OrderState.Value(row["state"])
            if not changes or changes[-1][0] != state:
                changes.append((state, row["recorded_at"]))
        return changes


# A token encode_cursor makes is under 200 characters (a time, an order id,
# a filter hash); anything far longer was not made here. Refused before it is
# decoded, so no caller picks how much memory or recursion a decode takes
# (JSON nested 100,000 deep recursed until a collection's callback failed).
_LONGEST_TOKEN = 512


def encode_cursor(cursor: PageCursor, filter_key: str) -> str:
    raw = json.dumps({"t": cursor.created_at.isoformat(), "id": cursor.order_id, "f": filter_key})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def page_after(token: str, filter_key: str, errors: Violations) -> PageCursor | None:
    """Where the page a caller's `page_token` asks for starts; None for the first page.

    A token this server did not make, or made for other filters, is noted
    in `errors` as a violation of `page_token` (ListOrders, SearchOrders).
    """
    if not token:
        return None
    try:
        return decode_cursor(token, filter_key)
    except ValueError:  # decode_cursor's one error for any token it did not make
        errors.add("page_token", "is not a token from a previous call with these filters")
        return None


def decode_cursor(token: str, filter_key: str) -> PageCursor:
    """Raises ValueError when the token is malformed or made for other filters.

    The token comes back from the caller, who may send anything: whatever is
    not the shape encode_cursor makes is a ValueError here, never a TypeError
    or a bad parameter further in.
    """
    if len(token) > _LONGEST_TOKEN:  # never decoded: its cost would be the caller's choice
        raise ValueError("page_token is not a token this server made")
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        raise ValueError("page_token is not a token this server made") from None
    if not isinstance(raw, dict):
        raise ValueError("page_token is not a token this server made")
    if raw.get("f") != filter_key:
        raise ValueError("page_token was made for other filters")
    created_at, order_id = raw.get("t"), raw.get("id")
    if not isinstance(created_at, str) or not isinstance(order_id, str):
        raise ValueError("page_token is not a token this server made")
    when = datetime.fromisoformat(created_at)
    if when.tzinfo is None:  # the server's tokens carry one; without it the instant is unknown
        raise ValueError("page_token holds a time without a zone")
    try:
        when = when.astimezone(UTC)  # as the database compares it; near year 1 it overflows
    except OverflowError:
        raise ValueError("page_token holds a time out of range") from None
    return PageCursor(when, order_id)
