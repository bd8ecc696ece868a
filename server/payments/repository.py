"""Payments, the ledger and voided keys in the `payments` schema.

Charges and refunds for one idempotency key are serialised by a transaction
advisory lock on the key, so concurrent retries of one charge see each
other's result instead of both reaching the gateway.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from clients.errors import Error, Reason
from server.payments import metrics
from server.payments.gateway import Outcome, SimulatedGateway


@dataclass(frozen=True)
class Payment:
    payment_id: str
    order_id: str
    idempotency_key: str
    currency_code: str
    amount_minor: int
    refunded_amount_minor: int
    state: str  # CAPTURED or REFUNDED
    card_last4: str
    created_at: datetime
    refunded_at: datetime | None


_COLUMNS = """payment_id, order_id, idempotency_key, currency_code, amount_minor,
              refunded_amount_minor, state, card_last4, created_at, refunded_at"""


def _payment(row: asyncpg.Record | None) -> Payment | None:
    return Payment(**dict(row)) if row else None


async def _lock_key(conn: asyncpg.Connection, key: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def _ledger(
    conn: asyncpg.Connection, payment_id: str, kind: str, currency: str, amount_minor: int
) -> None:
    """Appends one movement of money to the ledger."""
    await conn.execute(
        """INSERT INTO payments.ledger (payment_id, kind, currency_code, amount_minor)
           VALUES ($1, $2, $3, $4)""",
        payment_id,
        kind,
        currency,
        amount_minor,
    )


class PaymentRepository:
    def __init__(self, pool: asyncpg.Pool, gateway: SimulatedGateway) -> None:
        self._pool = pool
        self._gateway = gateway

    async def charge(
        self, key: str, order_id: str, currency: str, amount_minor: int, token: str
    ) -> Payment:
        outcome = None
        captured: Payment | None = None
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                await _lock_key(conn, key)
                existing = _payment(
                    await conn.fetchrow(
                        f"SELECT {_COLUMNS} FROM payments.payments WHERE idempotency_key = $1", key
                    )
                )
                if existing is not None:
                    if (existing.order_id, existing.currency_code, existing.amount_minor) != (
                        order_id,
                        currency,
                        amount_minor,
                    ):
                        raise Error(
                            Reason.IDEMPOTENCY_KEY_REUSED,
                            "this idempotency key was used for another order or amount",
                            {"idempotency_key": key, "payment_id": existing.payment_id},
                        )
                    return existing
                if await conn.fetchval(
                    "SELECT true FROM payments.voided_keys WHERE idempotency_key = $1", key
                ):
                    raise Error(
                        Reason.CHARGE_VOIDED,
                        "this charge was refunded before it was made",
                        {"idempotency_key": key},
                    )
                outcome = await self._gateway.charge(conn, key, token)
                if outcome is Outcome.APPROVED:
                    captured = _payment(
                        await conn.fetchrow(
                            f"""INSERT INTO payments.payments
                              (payment_id, idempotency_key, order_id, currency_code,
                               amount_minor, state, card_last4)
                            VALUES ($1, $2, $3, $4, $5, 'CAPTURED', $6)
                            RETURNING {_COLUMNS}""",
                            f"pay_{uuid.uuid4().hex}",
                            key,
                            order_id,
                            currency,
                            amount_minor,
                            self._gateway.card_last4(token),
                        )
                    )
                    assert captured is not None
                    await _ledger(conn, captured.payment_id, "CHARGE", currency, amount_minor)
        # Counted once the transaction is committed; a repeat of a key never is.
        assert outcome is not None
        metrics.CHARGES.labels(outcome.value).inc()
        if captured is not None:
            metrics.CHARGED.labels(currency).inc(amount_minor)
            return captured
        # Out of the transaction, so the gateway attempt stays counted.
        if outcome is Outcome.UNAVAILABLE:
            raise Error(
                Reason.GATEWAY_UNAVAILABLE,
                "the card gateway is unavailable; retry with the same key",
                {"idempotency_key": key},
            )
        raise Error(
            Reason.PAYMENT_DECLINED,
            "the card was declined",
            {"idempotency_key": key, "order_id": order_id},
        )

    async def refund(self, *, payment_id: str = "", key: str = "") -> Payment | None:
        async with self._pool.acquire() as conn, conn.transaction():
            if key:
                await _lock_key(conn, key)
                row = await conn.fetchrow(
                    f"SELECT {_COLUMNS} FROM payments.payments WHERE idempotency_key = $1"
                    " FOR UPDATE",
                    key,
                )
                if row is None:
                    await conn.execute(
                        """INSERT INTO payments.voided_keys (idempotency_key) VALUES ($1)
                           ON CONFLICT DO NOTHING""",
                        key,
                    )
                    return None
            else:
                row = await conn.fetchrow(
                    f"SELECT {_COLUMNS} FROM payments.payments WHERE payment_id = $1 FOR UPDATE",
                    payment_id,
                )
                if row is None:
                    raise Error(
                        Reason.PAYMENT_NOT_FOUND,
                        f"no payment {payment_id}",
                        {"payment_id": payment_id},
                    )
            payment = _payment(row)
            assert payment is not None
            if payment.state == "REFUNDED":
                return payment
            refunded = _payment(
                await conn.fetchrow(
                    f"""UPDATE payments.payments
                       SET state = 'REFUNDED', refunded_amount_minor = amount_minor,
                           refunded_at = now()
                     WHERE payment_id = $1
                 RETURNING {_COLUMNS}""",
                    payment.payment_id,
                )
            )
            await _ledger(
                conn, payment.payment_id, "REFUND", payment.currency_code, payment.amount_minor
            )
        metrics.REFUNDED.labels(payment.currency_code).inc(payment.amount_minor)
        return refunded

    async def get(self, payment_id: str) -> Payment:
        payment = _payment(
            await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM payments.payments WHERE payment_id = $1", payment_id
            )
        )
        if payment is None:
            raise Error(
                Reason.PAYMENT_NOT_FOUND, f"no payment {payment_id}", {"payment_id": payment_id}
            )
        return payment

    async def list_for_order(self, order_id: str) -> list[Payment]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM payments.payments WHERE order_id = $1"
            " ORDER BY created_at, payment_id",
            order_id,
        )
        return [Payment(**dict(r)) for r in rows]
