"""What each idempotency key holds: its first charge's parameters and outcome.

The rules they serve are written in protos/payments/v1/payments.proto: a key
is bound to the parameters of its first charge, its first final outcome is
replayed, a transient failure is no outcome, and a key refunded before any
capture is void. Callers hold the key's advisory lock (see repository.py)
while they read and change its record: `lock_and_find` takes it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass, fields

import asyncpg


class KeyOutcome(enum.StrEnum):
    PENDING = "PENDING"  # only transient gateway failures so far
    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    VOIDED = "VOIDED"


def card_hash(key: str, token: str) -> str:
    """A fingerprint of the card for this key only; the token cannot be read back from it.

    Keyed by the idempotency key so that one card cannot be followed across
    keys (and so orders) through the table.
    """
    return hmac.new(key.encode(), token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChargeParameters:
    """What a charge asks for; a key accepts only the parameters of its first charge."""

    order_id: str
    currency_code: str
    amount_minor: int
    card_hash: str | None  # None for keys recorded before card hashes were kept


# Field names as the caller knows them, for ErrorInfo metadata.
_REQUEST_FIELDS = {
    "order_id": "order_id",
    "currency_code": "amount.currency_code",
    "amount_minor": "amount.amount_minor",
    "card_hash": "payment_token",
}


def mismatched_fields(bound: ChargeParameters, requested: ChargeParameters) -> list[str]:
    """The request fields in which `requested` differs from the key's first charge."""
    differing = []
    for field in fields(ChargeParameters):
        was, now = getattr(bound, field.name), getattr(requested, field.name)
        if field.name == "card_hash" and was is None:
            continue  # not recorded: nothing to compare with
        if was != now:
            differing.append(_REQUEST_FIELDS[field.name])
    return differing


@dataclass(frozen=True)
class ChargeKey:
    idempotency_key: str
    parameters: ChargeParameters | None  # None when voided before any charge
    outcome: KeyOutcome
    payment_id: str | None  # set when CAPTURED


async def lock_and_find(conn: asyncpg.Connection, key: str) -> ChargeKey | None:
    """Takes the key's advisory lock for the caller's transaction, then reads its record.

    One round trip (payments.lock_charge_key): charges and refunds under one
    key are serialised by the lock, so the record read is the last holder's.
    """
    row = await conn.fetchrow(
        """SELECT order_id, currency_code, amount_minor, card_hash, outcome, payment_id
             FROM payments.lock_charge_key($1)""",
        key,
    )
    if row is None:
        return None
    parameters = None
    if row["order_id"] is not None:
        parameters = ChargeParameters(
            row["order_id"], row["currency_code"], row["amount_minor"], row["card_hash"]
        )
    return ChargeKey(key, parameters, KeyOutcome(row["outcome"]), row["payment_id"])


# Records what a charge that reached the gateway came to: $1 the key, $2-$5
# the parameters (order, currency, amount, card hash), $6 the outcome, $7 the
# payment id. The first attempt binds the parameters; later ones under a
# PENDING key (retries after transient failures) carry the same, and settle
# the outcome. A statement of its own, or a part of a capture's (repository.py).
RECORD_ATTEMPT = """INSERT INTO payments.charge_keys
           (idempotency_key, order_id, currency_code, amount_minor, card_hash,
            outcome, payment_id, decided_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $6 = 'PENDING' THEN NULL ELSE now() END)
       ON CONFLICT (idempotency_key) DO UPDATE
          SET outcome = EXCLUDED.outcome, payment_id = EXCLUDED.payment_id,
              decided_at = EXCLUDED.decided_at
        WHERE payments.charge_keys.outcome = 'PENDING'"""


def attempt_arguments(
    key: str, parameters: ChargeParameters, outcome: KeyOutcome, payment_id: str | None = None
) -> tuple[object, ...]:
    """RECORD_ATTEMPT's arguments, $1 to $7."""
    return (
        key,
        parameters.order_id,
        parameters.currency_code,
        parameters.amount_minor,
        parameters.card_hash,
        outcome.value,
        payment_id,
    )


async def record_attempt(
    conn: asyncpg.Connection, key: str, parameters: ChargeParameters, outcome: KeyOutcome
) -> None:
    """Records an attempt that captured nothing (declined, or the gateway unavailable)."""
    await conn.execute(RECORD_ATTEMPT, *attempt_arguments(key, parameters, outcome))


async def void(conn: asyncpg.Connection, key: str) -> None:
    """Voids a key under which nothing was captured: unknown so far, or PENDING."""
    await conn.execute(
        """INSERT INTO payments.charge_keys (idempotency_key, outcome, decided_at)
           VALUES ($1, 'VOIDED', now())
           ON CONFLICT (idempotency_key) DO UPDATE
              SET outcome = 'VOIDED', decided_at = now()
            WHERE payments.charge_keys.outcome = 'PENDING'""",
        key,
    )
