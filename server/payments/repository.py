"""Payments, the ledger and the record of each idempotency key, in the `payments` schema.

Charges and refunds under one idempotency key are serialised by a transaction
advisory lock on the key, so concurrent retries of one charge see each
other's result instead of both reaching the gateway, and a refund by key
sees the charge either done or not begun. The rules themselves are in
payments.proto; charge_keys.py keeps each key's record.

A charge is five round trips: BEGIN, the key's lock and record (one
function), the gateway, the capture with its ledger entry and the key's
outcome (one statement), COMMIT.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from clients.errors import Error, Reason
from server.payments import charge_keys, metrics
from server.payments.charge_keys import ChargeKey, ChargeParameters, KeyOutcome
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


@dataclass(frozen=True)
class KeyRefund:
    """What a refund by idempotency key found, and the payment it refunded if any."""

    outcome: KeyOutcome  # CAPTURED, DECLINED or VOIDED
    payment: Payment | None
    voided_now: bool = False


_COLUMNS = """payment_id, order_id, idempotency_key, currency_code, amount_minor,
              refunded_amount_minor, state, card_last4, created_at, refunded_at"""

_KEY_OUTCOMES = {
    Outcome.APPROVED: KeyOutcome.CAPTURED,
    Outcome.DECLINED: KeyOutcome.DECLINED,
    Outcome.UNAVAILABLE: KeyOutcome.PENDING,
}


def _payment(row: asyncpg.Record | None) -> Payment | None:
    return Payment(**dict(row)) if row else None


async def _lock_key(conn: asyncpg.Connection, key: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def _payment_by_id(conn: asyncpg.Connection, payment_id: str) -> Payment | None:
    return _payment(
        await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM payments.payments WHERE payment_id = $1", payment_id
        )
    )


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


def _declined(key: str, order_id: str) -> Error:
    return Error(
        Reason.PAYMENT_DECLINED,
        "the card was declined",
        {"idempotency_key": key, "order_id": order_id},
    )


def _voided(key: str) -> Error:
    return Error(
        Reason.CHARGE_VOIDED,
        "this charge was refunded before it was made",
        {"idempotency_key": key},
    )


async def _replay(
    conn: asyncpg.Connection, known: ChargeKey, requested: ChargeParameters
) -> Payment | None:
    """The answer a key's record gives to a new charge; None when the gateway must be asked.

    Raises the refusal when the record settles it: other parameters, a voided
    or refunded key, a declined card.
    """
    key = known.idempotency_key
    if known.parameters is None:
        raise _voided(key)
    differing = charge_keys.mismatched_fields(known.parameters, requested)
    if differing:
        metadata = {"idempotency_key": key, "mismatched_fields": ",".join(differing)}
        if known.payment_id:
            metadata["payment_id"] = known.payment_id
        raise Error(
            Reason.IDEMPOTENCY_KEY_REUSED,
            f"this idempotency key was used with another {', '.join(differing)};"
            " a new charge needs a new key",
            metadata,
        )
    match known.outcome:
        case KeyOutcome.PENDING:
            return None
        case KeyOutcome.DECLINED:
            raise _declined(key, requested.order_id)
        case KeyOutcome.VOIDED:
            raise _voided(key)
        case KeyOutcome.CAPTURED:
            assert known.payment_id is not None
            payment = await _payment_by_id(conn, known.payment_id)
            assert payment is not None
            if payment.state == "REFUNDED":
                raise Error(
                    Reason.CHARGE_VOIDED,
                    "the payment made under this key was refunded; nothing is charged",
                    {"idempotency_key": key, "payment_id": payment.payment_id},
                )
            return payment


async def _refund_locked(conn: asyncpg.Connection, payment_id: str) -> tuple[Payment, bool]:
    """Refunds a payment whose key the caller has locked, in the caller's transaction.

    Returns the payment and whether money moved now (False when it was
    already refunded).
    """
    payment = _payment(
        await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM payments.payments WHERE payment_id = $1 FOR UPDATE",
            payment_id,
        )
    )
    assert payment is not None
    if payment.state == "REFUNDED":
        return payment, False
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
    assert refunded is not None
    await _ledger(conn, payment.payment_id, "REFUND", payment.currency_code, payment.amount_minor)
    return refunded, True


class PaymentRepository:
    def __init__(self, pool: asyncpg.Pool, gateway: SimulatedGateway) -> None:
        self._pool = pool
        self._gateway = gateway

    async def charge(
        self, key: str, order_id: str, currency: str, amount_minor: int, token: str
    ) -> Payment:
        requested = ChargeParameters(
            order_id, currency, amount_minor, charge_keys.card_hash(key, token)
        )
        captured: Payment | None = None
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                known = await charge_keys.lock_and_find(conn, key)
                if known is not None:
                    replayed = await _replay(conn, known, requested)
                    if replayed is not None:
                        return replayed
                outcome = await self._gateway.charge(conn, key, token)
                # Recorded with the gateway attempt, so a declined or transient
                # outcome is kept although the call fails.
                if outcome is Outcome.APPROVED:
                    captured = await self._capture(conn, key, requested, token)
                else:
                    await charge_keys.record_attempt(conn, key, requested, _KEY_OUTCOMES[outcome])
        # Counted once the transaction is committed; a repeat of a key never is.
        metrics.CHARGES.labels(outcome.value).inc()
        if captured is not None:
            metrics.CHARGED.labels(currency).inc(amount_minor)
            return captured
        if outcome is Outcome.UNAVAILABLE:
            raise Error(
                Reason.GATEWAY_UNAVAILABLE,
                "the card gateway is unavailable; retry with the same key",
                {"idempotency_key": key},
            )
        raise _declined(key, order_id)

    async def _capture(
        self, conn: asyncpg.Connection, key: str, charge: ChargeParameters, token: str
    ) -> Payment:
        """Stores the payment, its ledger entry and the key's CAPTURED outcome: one statement."""
        arguments = charge_keys.attempt_arguments(
            key, charge, KeyOutcome.CAPTURED, f"pay_{uuid.uuid4().hex}"
        )
        captured = _payment(
            await conn.fetchrow(
                f"""WITH captured AS (
                        INSERT INTO payments.payments
                          (payment_id, idempotency_key, order_id, currency_code,
                           amount_minor, state, card_last4)
                        VALUES ($7, $1, $2, $3, $4, 'CAPTURED', $8)
                        RETURNING {_COLUMNS}
                    ), entered AS (
                        INSERT INTO payments.ledger
                          (payment_id, kind, currency_code, amount_minor)
                        SELECT payment_id, 'CHARGE', currency_code, amount_minor FROM captured
                    ), recorded AS ({charge_keys.RECORD_ATTEMPT})
                    SELECT {_COLUMNS} FROM captured""",
                *arguments,
                self._gateway.card_last4(token),
            )
        )
        assert captured is not None
        return captured

    async def refund(self, payment_id: str) -> Payment:
        """Refunds a payment in full; a refunded payment is returned unchanged."""
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                payment = await _payment_by_id(conn, payment_id)
                if payment is None:
                    raise Error(
                        Reason.PAYMENT_NOT_FOUND,
                        f"no payment {payment_id}",
                        {"payment_id": payment_id},
                    )
                await _lock_key(conn, payment.idempotency_key)
                refunded, moved = await _refund_locked(conn, payment.payment_id)
        if moved:
            metrics.REFUNDED.labels(refunded.currency_code).inc(refunded.amount_minor)
        return refunded

    async def refund_key(self, key: str) -> KeyRefund:
        """Undoes whatever was charged under `key`, voiding it when nothing was captured."""
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                known = await charge_keys.lock_and_find(conn, key)
                if known is None or known.outcome is KeyOutcome.PENDING:
                    await charge_keys.void(conn, key)
                    return KeyRefund(KeyOutcome.VOIDED, None, voided_now=True)
                if known.outcome is not KeyOutcome.CAPTURED:
                    return KeyRefund(known.outcome, None)
                assert known.payment_id is not None
                refunded, moved = await _refund_locked(conn, known.payment_id)
        if moved:
            metrics.REFUNDED.labels(refunded.currency_code).inc(refunded.amount_minor)
        return KeyRefund(KeyOutcome.CAPTURED, refunded)

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
