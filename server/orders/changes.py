"""Changes of mind, in the order they were sent: the fences between callers and the shipment.

A caller may change an order's shipping address until the booking request
goes to the carrier, and cancel it until the carrier has confirmed the
booking. Both are decided here, in one row of `orders.orders` that the front
door and the worker update in turn (migration 0009), so the database's order
of commits is the order of events:

* the front door takes a change only while its fence is down, and the change
  is stored before it is answered (then the workflow is told);
* the worker raises the booking fence just before it asks the carrier to
  book, and books to the address last accepted before that; it raises the
  shipped fence once the carrier confirmed, unless a cancellation came first,
  which the workflow then carries out (the booking is cancelled with the rest).

A change therefore wins if the front door accepted it before the step it
races, and is refused with the reason it always had if it came after, however
long the workflow's current step takes: the answer needs no worker.

Reads show what was accepted at once (`with_changes`): the requested address,
and CANCELLING for an order whose cancellation the workflow has not yet
written.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import asyncpg

from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2
from server.orders.projection import NOTIFY_CHANNEL

State = orders_pb2.OrderState

_ADDRESS_CHANGEABLE = [
    State.Name(state)
    for state in (
        State.ORDER_STATE_PENDING,
        State.ORDER_STATE_RESERVED,
        State.ORDER_STATE_PAID,
        State.ORDER_STATE_SHIPPING,
    )
]
_CANCELLABLE = [*_ADDRESS_CHANGEABLE, State.Name(State.ORDER_STATE_CANCELLING)]
_SHIPPED = [
    State.Name(state)
    for state in (
        State.ORDER_STATE_SHIPPED,
        State.ORDER_STATE_DELIVERED,
        State.ORDER_STATE_DELIVERY_OVERDUE,
    )
]
# States in which a cancellation the workflow has not written yet shows as CANCELLING.
_CANCELLING_SHOWS_OVER = frozenset(
    {
        State.ORDER_STATE_PENDING,
        State.ORDER_STATE_RESERVED,
        State.ORDER_STATE_PAID,
        State.ORDER_STATE_SHIPPING,
    }
)


class Verdict(enum.Enum):
    """What became of a change the front door was asked for."""

    ACCEPTED = "accepted"
    # The order's workflow does not take the fences (an order placed before
    # them, or stored by its workflow first): ask the workflow instead.
    NOT_FENCED = "not fenced"
    ALREADY_SHIPPED = "already shipped"
    FINISHED = "finished"
    NOT_FOUND = "not found"


@dataclass(frozen=True)
class BookingFence:
    """What the booking step must do, read as the booking fence went up."""

    # The address last accepted for the order; None: the one it was placed with.
    address: address_pb2.PostalAddress | None
    # The cancellation accepted before the fence, if any: then nothing is booked.
    cancel_reason: str | None


class OrderChanges:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # ------------------------------------------------------- front door

    async def change_address(self, order_id: str, address: address_pb2.PostalAddress) -> Verdict:
        """Takes a new shipping address unless the booking was sent or the order is undone."""
        async with self._pool.acquire() as conn, conn.transaction():
            taken = await conn.fetchval(
                """UPDATE orders.orders
                      SET requested_address = $2, address_changes = address_changes + 1
                    WHERE order_id = $1 AND changes_fenced
                      AND booking_fenced_at IS NULL AND cancel_requested_at IS NULL
                      AND state = ANY($3::text[])
                RETURNING true""",
                order_id,
                address.SerializeToString(),
                _ADDRESS_CHANGEABLE,
            )
            if taken:
                await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, order_id)
                return Verdict.ACCEPTED
            row = await conn.fetchrow(
                """SELECT changes_fenced, state, booking_fenced_at IS NOT NULL AS booked,
                          cancel_requested_at IS NOT NULL AS cancelled
                     FROM orders.orders WHERE order_id = $1""",
                order_id,
            )
        if row is None:
            return Verdict.NOT_FOUND
        if not row["changes_fenced"]:
            return Verdict.NOT_FENCED
        if row["cancelled"] or row["state"] not in (*_ADDRESS_CHANGEABLE, *_SHIPPED):
            return Verdict.FINISHED
        return Verdict.ALREADY_SHIPPED

    async def cancel(self, order_id: str, reason: str) -> Verdict:
        """Takes a cancellation unless the carrier confirmed the booking or the order ended.

        A cancellation taken before is taken again (its first reason kept).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            taken = await conn.fetchval(
                """UPDATE orders.orders
                      SET cancel_requested_at = coalesce(cancel_requested_at, now()),
                          cancel_reason = coalesce(cancel_reason, $2)
                    WHERE order_id = $1 AND changes_fenced AND shipped_fenced_at IS NULL
                      AND state = ANY($3::text[])
                RETURNING true""",
                order_id,
                reason,
                _CANCELLABLE,
            )
            if taken:
                await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, order_id)
                return Verdict.ACCEPTED
            row = await conn.fetchrow(
                """SELECT changes_fenced, state, shipped_fenced_at IS NOT NULL AS shipped
                     FROM orders.orders WHERE order_id = $1""",
                order_id,
            )
        if row is None:
            return Verdict.NOT_FOUND
        if not row["changes_fenced"]:
            return Verdict.NOT_FENCED
        if row["shipped"] or row["state"] in _SHIPPED:
            return Verdict.ALREADY_SHIPPED
        return Verdict.FINISHED

    # ----------------------------------------------------------- worker

    async def fence_booking(self, order_id: str) -> BookingFence:
        """Raises the booking fence (again, on a retry); what was accepted before it."""
        row = await self._pool.fetchrow(
            """UPDATE orders.orders
                  SET booking_fenced_at = coalesce(booking_fenced_at, now())
                WHERE order_id = $1
            RETURNING requested_address, cancel_requested_at IS NOT NULL AS cancelled,
                      cancel_reason""",
            order_id,
        )
        if row is None:  # not stored: nothing can have been accepted for it
            return BookingFence(None, None)
        address = None
        if row["requested_address"] is not None:
            address = address_pb2.PostalAddress.FromString(row["requested_address"])
        return BookingFence(address, (row["cancel_reason"] or "") if row["cancelled"] else None)

    async def fence_shipped(self, order_id: str) -> str | None:
        """Raises the shipped fence; the reason of a cancellation that came first, if one did."""
        row = await self._pool.fetchrow(
            """UPDATE orders.orders
                  SET shipped_fenced_at = coalesce(shipped_fenced_at, now())
                WHERE order_id = $1 AND cancel_requested_at IS NULL
            RETURNING true""",
            order_id,
        )
        if row is not None:
            return None
        reason = await self._pool.fetchval(
            """SELECT coalesce(cancel_reason, '') FROM orders.orders
                WHERE order_id = $1 AND cancel_requested_at IS NOT NULL""",
            order_id,
        )
        return reason  # None: not stored, nothing to refuse


def with_changes(
    order: orders_pb2.Order, requested_address: bytes | None, cancel_requested: bool
) -> orders_pb2.Order:
    """The order as a caller should see it: with the changes accepted for it applied."""
    if requested_address is not None:
        order.shipping_address.ParseFromString(requested_address)
    if cancel_requested and order.state in _CANCELLING_SHOWS_OVER:
        order.state = State.ORDER_STATE_CANCELLING
    return order
