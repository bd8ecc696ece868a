"""Stock and reservations in the `inventory` schema.

Reserving takes row locks on the stock of every line, in SKU order (so two
orders never deadlock), and decrements `available` only where enough is
left: concurrent orders can never oversell, and a reservation is all lines
or none because one failed line rolls the whole transaction back.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from clients.errors import Error, Reason


@dataclass(frozen=True)
class StockItem:
    sku: str
    available: int
    reserved: int
    currency_code: str
    unit_price_minor: int


@dataclass(frozen=True)
class Reservation:
    order_id: str
    state: str  # RESERVED, COMMITTED or RELEASED
    lines: dict[str, int]


_STOCK_COLUMNS = "sku, available, reserved, currency_code, unit_price_minor"


def _stock(row: asyncpg.Record) -> StockItem:
    return StockItem(**dict(row))


class InventoryRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def set_stock(
        self, sku: str, quantity: int, currency: str, price_minor: int
    ) -> StockItem:
        row = await self._pool.fetchrow(
            f"""INSERT INTO inventory.stock (sku, available, currency_code, unit_price_minor)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (sku) DO UPDATE
                   SET available = EXCLUDED.available,
                       currency_code = EXCLUDED.currency_code,
                       unit_price_minor = EXCLUDED.unit_price_minor,
                       updated_at = now()
                RETURNING {_STOCK_COLUMNS}""",
            sku,
            quantity,
            currency,
            price_minor,
        )
        return _stock(row)

    async def get_stock(self, skus: list[str]) -> dict[str, StockItem]:
        rows = await self._pool.fetch(
            f"SELECT {_STOCK_COLUMNS} FROM inventory.stock WHERE sku = ANY($1::text[])", skus
        )
        return {row["sku"]: _stock(row) for row in rows}

    async def get_reservation(self, order_id: str) -> Reservation:
        async with self._pool.acquire() as conn:
            reservation = await _load(conn, order_id)
        if reservation is None:
            raise _not_found(order_id)
        return reservation

    async def reserve(self, order_id: str, lines: dict[str, int]) -> Reservation:
        async with self._pool.acquire() as conn, conn.transaction():
            created = await conn.fetchval(
                """INSERT INTO inventory.reservations (order_id, state) VALUES ($1, 'RESERVED')
                   ON CONFLICT (order_id) DO NOTHING RETURNING true""",
                order_id,
            )
            if not created:
                existing = await _load(conn, order_id, lock=True)
                assert existing is not None
                if existing.state == "RELEASED":
                    raise _released(order_id)
                if existing.lines != lines:
                    # The order holds other goods than the caller asks for:
                    # answering the old reservation would hide it.
                    raise Error(
                        Reason.RESERVATION_DIFFERS,
                        f"order {order_id} already holds a reservation of other lines",
                        {"order_id": order_id, "mismatched_fields": "lines"},
                    )
                return existing
            for sku in sorted(lines):
                taken = await conn.fetchval(
                    """UPDATE inventory.stock
                          SET available = available - $2, reserved = reserved + $2,
                              updated_at = now()
                        WHERE sku = $1 AND available >= $2
                    RETURNING true""",
                    sku,
                    lines[sku],
                )
                if not taken:
                    # Raising rolls back every line taken so far.
                    exists = await conn.fetchval(
                        "SELECT true FROM inventory.stock WHERE sku = $1", sku
                    )
                    if not exists:
                        raise Error(
                            Reason.SKU_NOT_FOUND, f"no SKU {sku} in the catalog", {"sku": sku}
                        )
                    raise Error(
                        Reason.OUT_OF_STOCK,
                        f"not enough stock of {sku}",
                        {"sku": sku, "order_id": order_id},
                    )
                await conn.execute(
                    "INSERT INTO inventory.reservation_lines (order_id, sku, quantity)"
                    " VALUES ($1, $2, $3)",
                    order_id,
                    sku,
                    lines[sku],
                )
            return Reservation(order_id, "RESERVED", dict(lines))

    async def commit(self, order_id: str) -> Reservation:
        async with self._pool.acquire() as conn, conn.transaction():
            reservation = await _load(conn, order_id, lock=True)
            if reservation is None:
                raise _not_found(order_id)
            if reservation.state == "RELEASED":
                raise _released(order_id)
            if reservation.state == "COMMITTED":
                return reservation
            await _move_stock(conn, reservation.lines, available=0, reserved=-1)
            await _set_state(conn, order_id, "COMMITTED")
            return Reservation(order_id, "COMMITTED", reservation.lines)

    async def release(self, order_id: str) -> Reservation:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO inventory.reservations (order_id, state) VALUES ($1, 'RELEASED')
                   ON CONFLICT (order_id) DO NOTHING""",
                order_id,
            )
            reservation = await _load(conn, order_id, lock=True)
            assert reservation is not None
            if reservation.state == "RESERVED":
                await _move_stock(conn, reservation.lines, available=1, reserved=-1)
            elif reservation.state == "COMMITTED":
                # The goods come back to the shelf.
                await _move_stock(conn, reservation.lines, available=1, reserved=0)
            if reservation.state != "RELEASED":
                await _set_state(conn, order_id, "RELEASED")
            return Reservation(order_id, "RELEASED", reservation.lines)


def _released(order_id: str) -> Error:
    return Error(
        Reason.RESERVATION_RELEASED,
        f"the reservation of order {order_id} was released",
        {"order_id": order_id},
    )


def _not_found(order_id: str) -> Error:
    return Error(
        Reason.RESERVATION_NOT_FOUND,
        f"order {order_id} holds no reservation",
        {"order_id": order_id},
    )


async def _load(
    conn: asyncpg.Connection, order_id: str, *, lock: bool = False
) -> Reservation | None:
    state = await conn.fetchval(
        "SELECT state FROM inventory.reservations WHERE order_id = $1"
        + (" FOR UPDATE" if lock else ""),
        order_id,
    )
    if state is None:
        return None
    rows = await conn.fetch(
        "SELECT sku, quantity FROM inventory.reservation_lines WHERE order_id = $1 ORDER BY sku",
        order_id,
    )
    return Reservation(order_id, state, {r["sku"]: r["quantity"] for r in rows})


async def _move_stock(
    conn: asyncpg.Connection, lines: dict[str, int], *, available: int, reserved: int
) -> None:
    """Adds `available * qty` and `reserved * qty` to each line's stock."""
    for sku in sorted(lines):
        await conn.execute(
            """UPDATE inventory.stock
                  SET available = available + $2::bigint * $3::bigint,
                      reserved = reserved + $2::bigint * $4::bigint,
                      updated_at = now()
                WHERE sku = $1""",
            sku,
            lines[sku],
            available,
            reserved,
        )


async def _set_state(conn: asyncpg.Connection, order_id: str, state: str) -> None:
    await conn.execute(
        "UPDATE inventory.reservations SET state = $2, updated_at = now() WHERE order_id = $1",
        order_id,
        state,
    )
