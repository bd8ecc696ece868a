"""The record of what operators did to orders, and the one action that is a database write.

Each action (OperatorService.RetryStep, CancelAndCompensate, MarkResolved)
is a row of `orders.operator_actions` (migration 0010): who, when, what,
why, and what came of it. Its id is derived from the operator and the
request_id, so a repeated request finds the row of the first one instead of
acting again; two requests racing with the same id both act (every action is
harmless twice) and the second is answered with the first one's row.

Resolving an order is done here, in the same transaction as its record: the
order's `attention_required` is cleared in its stored message and its column,
in place, without a new version. A version number is the workflow's to
give (server/orders/projection.py): one taken here could be taken again by
the workflow's next write, which would then be dropped as stale. The row is
locked meanwhile, so a write of the workflow waits and lands after it, with
its own flag.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from google.protobuf import json_format

from clients.errors import Error, Reason
from clients.proto.operator.v1 import operator_pb2
from clients.proto.orders.v1 import orders_pb2
from server.orders.projection import NOTIFY_CHANNEL


class Kind(enum.StrEnum):
    """What an operator did; stored by name."""

    RETRY_STEP = "RETRY_STEP"
    CANCEL_AND_COMPENSATE = "CANCEL_AND_COMPENSATE"
    MARK_RESOLVED = "MARK_RESOLVED"

    @property
    def proto(self) -> operator_pb2.OperatorActionKind.ValueType:
        return operator_pb2.OperatorActionKind.Value(f"OPERATOR_ACTION_KIND_{self.value}")


@dataclass(frozen=True)
class Asked:
    """An action as asked: what makes a repeat the same request."""

    operator: str
    request_id: str
    order_id: str
    kind: Kind
    note: str

    @property
    def action_id(self) -> str:
        # request_ids are each operator's own. 0xFF never occurs in UTF-8,
        # so no other pair makes the same bytes.
        key = b"\xff" + self.operator.encode() + b"\xff" + self.request_id.encode()
        return "act_" + hashlib.sha256(key).hexdigest()[:32]


@dataclass(frozen=True)
class Action:
    """An action as recorded."""

    asked: Asked
    result: str
    created_at: datetime

    def to_proto(self) -> operator_pb2.OperatorAction:
        message = operator_pb2.OperatorAction(
            action_id=self.asked.action_id,
            request_id=self.asked.request_id,
            order_id=self.asked.order_id,
            kind=self.asked.kind.proto,
            operator=self.asked.operator,
            note=self.asked.note,
            result=self.result,
        )
        message.create_time.FromDatetime(self.created_at)
        return message


_COLUMNS = "operator, request_id, order_id, kind, note, result, created_at"


def _action(row: asyncpg.Record) -> Action:
    asked = Asked(
        row["operator"], row["request_id"], row["order_id"], Kind(row["kind"]), row["note"]
    )
    return Action(asked, row["result"], row["created_at"])


def _same(recorded: Action, asked: Asked) -> Action:
    """The recorded action, if `asked` repeats it; REQUEST_ID_REUSED otherwise."""
    if recorded.asked != asked:
        raise Error(
            Reason.REQUEST_ID_REUSED,
            "this request_id was already used for another action, order or note",
            {"action_id": recorded.asked.action_id, "order_id": recorded.asked.order_id},
        )
    return recorded


class OperatorActions:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def find(self, asked: Asked) -> Action | None:
        """The action recorded under `asked`'s request_id; REQUEST_ID_REUSED if it differs."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM orders.operator_actions WHERE action_id = $1",
            asked.action_id,
        )
        return _same(_action(row), asked) if row is not None else None

    async def record(self, asked: Asked, result: str) -> Action:
        """Records an action taken; the first record, if the same one was recorded meanwhile."""
        async with self._pool.acquire() as conn:
            return await _record(conn, asked, result)

    async def of_order(self, order_id: str) -> list[Action]:
        rows = await self._pool.fetch(
            f"""SELECT {_COLUMNS} FROM orders.operator_actions
                 WHERE order_id = $1 ORDER BY created_at, action_id""",
            order_id,
        )
        return [_action(row) for row in rows]

    async def resolve(self, asked: Asked) -> Action:
        """Clears the order's attention flag and records that, in one transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT message, body, attention_required FROM orders.orders
                    WHERE order_id = $1 FOR UPDATE""",
                asked.order_id,
            )
            if row is None:
                raise Error(
                    Reason.ORDER_NOT_FOUND,
                    f"no order {asked.order_id}",
                    {"order_id": asked.order_id},
                )
            order = _stored_message(row)
            flagged = order.attention_required or row["attention_required"]
            if flagged:
                order.attention_required = False
                await conn.execute(
                    """UPDATE orders.orders
                          SET message = $2, body = NULL, attention_required = false
                        WHERE order_id = $1""",
                    asked.order_id,
                    order.SerializeToString(),
                )
            ended = await conn.fetchval(
                """UPDATE orders.order_attention SET resolved_at = now()
                    WHERE order_id = $1 AND resolved_at IS NULL
                RETURNING workflow_status""",
                asked.order_id,
            )
            result = "cleared attention_required" if flagged else "the order was not flagged"
            if ended is not None:
                result += f"; its workflow's end ({ended}) is marked resolved"
            action = await _record(conn, asked, result)
            if flagged:
                # Read caches drop the order (server/orders/cache.py).
                await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, asked.order_id)
        return action


def _stored_message(row: asyncpg.Record) -> orders_pb2.Order:
    """The order as its workflow last wrote it (without the changes accepted since)."""
    if row["message"] is not None:
        return orders_pb2.Order.FromString(row["message"])
    return json_format.Parse(row["body"], orders_pb2.Order())


async def _record(conn: asyncpg.Connection, asked: Asked, result: str) -> Action:
    row = await conn.fetchrow(
        f"""INSERT INTO orders.operator_actions
              (action_id, operator, request_id, order_id, kind, note, result)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (action_id) DO NOTHING
            RETURNING {_COLUMNS}""",
        asked.action_id,
        asked.operator,
        asked.request_id,
        asked.order_id,
        asked.kind.value,
        asked.note,
        result,
    )
    if row is None:  # recorded by a request that raced this one
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM orders.operator_actions WHERE action_id = $1",
            asked.action_id,
        )
    return _same(_action(row), asked)
