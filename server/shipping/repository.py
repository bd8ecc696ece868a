"""Shipments in the `shipping` schema."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from clients.errors import Error, Reason
from server.shipping.booking import mismatched_fields
from server.shipping.carrier import SimulatedCarrier


@dataclass(frozen=True)
class Shipment:
    shipment_id: str
    order_id: str
    state: str  # BOOKING, BOOKED or CANCELLED
    address: dict[str, Any] | None
    item_count: int
    tracking_number: str | None
    created_at: datetime
    expected_booked_at: datetime


_COLUMNS = """shipment_id, order_id, state, address, item_count, tracking_number,
              created_at, expected_booked_at"""


def _shipment(row: asyncpg.Record | None) -> Shipment | None:
    if row is None:
        return None
    values = dict(row)
    if values["address"] is not None:
        values["address"] = json.loads(values["address"])
    return Shipment(**values)


class ShippingRepository:
    def __init__(self, pool: asyncpg.Pool, carrier: SimulatedCarrier) -> None:
        self._pool = pool
        self._carrier = carrier

    async def create(self, order_id: str, address: dict[str, Any], item_count: int) -> Shipment:
        # A carrier that books at once confirms in its answer to the booking
        # request, so the caller need not ask again.
        tracking_number = self._carrier.tracking_number() if self._carrier.books_at_once else None
        row = await self._pool.fetchrow(
            f"""INSERT INTO shipping.shipments
                  (shipment_id, order_id, state, address, item_count, expected_booked_at,
                   tracking_number, booked_at)
                VALUES ($1, $2, CASE WHEN $6::text IS NULL THEN 'BOOKING' ELSE 'BOOKED' END,
                        $3::jsonb, $4, now() + $5::interval,
                        $6, CASE WHEN $6::text IS NULL THEN NULL ELSE now() END)
                ON CONFLICT (order_id) DO NOTHING
                RETURNING {_COLUMNS}""",
            f"shp_{uuid.uuid4().hex}",
            order_id,
            json.dumps(address),
            item_count,
            self._carrier.booking_time,
            tracking_number,
        )
        if row is not None:
            shipment = _shipment(row)
            assert shipment is not None
            return shipment
        existing = await self.get(order_id)
        if existing.state == "CANCELLED":
            raise _cancelled(order_id)
        differing = mismatched_fields(existing.address, existing.item_count, address, item_count)
        if differing:
            # Answering the old booking would send the parcel somewhere the
            # caller no longer asks for, without telling it.
            raise Error(
                Reason.SHIPMENT_DIFFERS,
                f"order {order_id} already has a shipment booked with another"
                f" {' and '.join(differing)}; RebookShipment moves it",
                {
                    "order_id": order_id,
                    "shipment_id": existing.shipment_id,
                    "mismatched_fields": ",".join(differing),
                },
            )
        return existing

    async def rebook(
        self, order_id: str, address: dict[str, Any], item_count: int
    ) -> tuple[Shipment, bool]:
        """Books the order's shipment again, to `address`; whether it moved.

        A shipment that already goes to `address` with `item_count` is
        returned as it is, so a repeat of the call books nothing.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            # Locked, so that a cancellation or another rebooking waits for this one.
            booked = _shipment(
                await conn.fetchrow(
                    f"SELECT {_COLUMNS} FROM shipping.shipments WHERE order_id = $1 FOR UPDATE",
                    order_id,
                )
            )
            if booked is None:
                raise _not_found(order_id)
            if booked.state == "CANCELLED":
                raise _cancelled(order_id)
            if mismatched_fields(booked.address, booked.item_count, address, item_count):
                tracking_number = (
                    self._carrier.tracking_number() if self._carrier.books_at_once else None
                )
                moved = _shipment(
                    await conn.fetchrow(
                        f"""UPDATE shipping.shipments
                               SET address = $2::jsonb, item_count = $3,
                                   state = CASE WHEN $5::text IS NULL
                                                THEN 'BOOKING' ELSE 'BOOKED' END,
                                   expected_booked_at = now() + $4::interval,
                                   tracking_number = $5,
                                   booked_at = CASE WHEN $5::text IS NULL
                                                    THEN NULL ELSE now() END
                             WHERE order_id = $1
                         RETURNING {_COLUMNS}""",
                        order_id,
                        json.dumps(address),
                        item_count,
                        self._carrier.booking_time,
                        tracking_number,
                    )
                )
                assert moved is not None
                return moved, True
        # Nothing to move: answered as GetShipment would, confirmed if the carrier is done.
        return await self.get(order_id), False

    async def get(self, order_id: str) -> Shipment:
        """Returns the shipment, moving it to BOOKED once the carrier is done."""
        row = await self._pool.fetchrow(
            f"""UPDATE shipping.shipments
                   SET state = 'BOOKED', tracking_number = $2, booked_at = now()
                 WHERE order_id = $1 AND state = 'BOOKING' AND expected_booked_at <= now()
             RETURNING {_COLUMNS}""",
            order_id,
            self._carrier.tracking_number(),
        ) or await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM shipping.shipments WHERE order_id = $1", order_id
        )
        shipment = _shipment(row)
        if shipment is None:
            raise _not_found(order_id)
        return shipment

    async def cancel(self, order_id: str) -> Shipment | None:
        row = await self._pool.fetchrow(
            f"""INSERT INTO shipping.shipments (shipment_id, order_id, state, cancelled_at)
                VALUES ($1, $2, 'CANCELLED', now())
                ON CONFLICT (order_id) DO UPDATE
                   SET state = 'CANCELLED',
                       cancelled_at = coalesce(shipping.shipments.cancelled_at, now())
                RETURNING {_COLUMNS}""",
            f"shp_{uuid.uuid4().hex}",
            order_id,
        )
        shipment = _shipment(row)
        assert shipment is not None
        # A tombstone (no address) is not a shipment the caller knew of.
        return shipment if shipment.address is not None else None


def _not_found(order_id: str) -> Error:
    return Error(
        Reason.SHIPMENT_NOT_FOUND, f"order {order_id} has no shipment", {"order_id": order_id}
    )


def _cancelled(order_id: str) -> Error:
    return Error(
        Reason.SHIPMENT_CANCELLED,
        f"the shipment of order {order_id} was cancelled",
        {"order_id": order_id},
    )
