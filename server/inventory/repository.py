"""Stock and reservations in the `inventory` schema.

Reserving takes row locks on the stock of every line, in SKU order (so two
orders never deadlock), and decrements `available` only where enough is
left: concurrent orders can never oversell, and a reservation is all lines
or none because one failed line rolls the whole change back.

Each change of a reservation (reserve, commit, release) is one call of a
function in the database (server/migrations/inventory/0002_*.sql): one round
trip instead of one per statement, under the same locks, in the same order.
What the service decides from the result (refusing other lines, a released
reservation) it decides here.
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
        skus = sorted(lines)
        try:
            row = await self._pool.fetchrow(
                "SELECT * FROM inventory.reserve($1, $2::text[], $3::bigint[])",
                order_id,
                skus,
                [lines[sku] for sku in skus],
            )
        except asyncpg.PostgresError as refused:
            raise _refusal(refused, order_id) from None
        assert row is not None
        held = _held(order_id, row["held_state"], row)
        if row["created"]:
            return held
        if held.state == "RELEASED":
            raise _released(order_id)
        if held.lines != lines:
            # The order holds other goods than the caller asks for:
            # answering the old reservation would hide it.
            raise Error(
                Reason.RESERVATION_DIFFERS,
                f"order {order_id} already holds a reservation of other lines",
                {"order_id": order_id, "mismatched_fields": "lines"},
            )
        return held

    async def commit(self, order_id: str) -> Reservation:
        row = await self._pool.fetchrow("SELECT * FROM inventory.commit_reservation($1)", order_id)
        assert row is not None
        found = row["found_state"]
        if found is None:
            raise _not_found(order_id)
        if found == "RELEASED":
            raise _released(order_id)
        return _held(order_id, "COMMITTED", row)

    async def release(self, order_id: str) -> Reservation:
        row = await self._pool.fetchrow("SELECT * FROM inventory.release_reservation($1)", order_id)
        assert row is not None
        return _held(order_id, "RELEASED", row)


def _held(order_id: str, state: str, row: asyncpg.Record) -> Reservation:
    """A reservation in `state` with the lines one of the functions returned."""
    skus, quantities = row["held_skus"] or [], row["held_quantities"] or []
    return Reservation(order_id, state, dict(zip(skus, quantities, strict=True)))


def _refusal(refused: asyncpg.PostgresError, order_id: str) -> Exception:
    """What inventory.reserve's refusal means to the caller; any other error as it is."""
    sku = getattr(refused, "detail", None) or ""
    match getattr(refused, "sqlstate", None):
        case "IV001":
            return Error(
                Reason.OUT_OF_STOCK,
                f"not enough stock of {sku}",
                {"sku": sku, "order_id": order_id},
            )
        case "IV002":
            return Error(Reason.SKU_NOT_FOUND, f"no SKU {sku} in the catalog", {"sku": sku})
    return refused


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


async def _load(conn: asyncpg.Connection, order_id: str) -> Reservation | None:
    state = await conn.fetchval(
        "SELECT state FROM inventory.reservations WHERE order_id = $1", order_id
    )
    if state is None:
        return None
    rows = await conn.fetch(
        "SELECT sku, quantity FROM inventory.reservation_lines WHERE order_id = $1 ORDER BY sku",
        order_id,
    )
    return Reservation(order_id, state, {r["sku"]: r["quantity"] for r in rows})
