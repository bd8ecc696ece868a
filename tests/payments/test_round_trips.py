"""A charge is five round trips to the database, whatever the gateway answers."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from clients.errors import Error, Reason
from server.payments.gateway import SimulatedGateway
from server.payments.repository import PaymentRepository
from tests.support.statements import noted_connection


def new_key() -> tuple[str, str]:
    order_id = f"ord_{uuid.uuid4().hex}"
    return f"{order_id}:charge", order_id


async def test_a_charge_is_begin_lock_gateway_record_commit(
    database_url: str, payments_pool: asyncpg.Pool
) -> None:
    # payments_pool has migrated the schema.
    async with noted_connection(database_url) as noted:
        payments = PaymentRepository(noted, SimulatedGateway(slow_seconds=0))  # type: ignore[arg-type]
        await payments.charge(*new_key(), "USD", 100, "tok_visa")  # warm up

        key, order_id = new_key()
        noted.statements.clear()
        captured = await payments.charge(key, order_id, "USD", 1250, "tok_visa")
        assert len(noted.statements) == 5, noted.statements

        key, order_id = new_key()
        noted.statements.clear()
        with pytest.raises(Error) as declined:
            await payments.charge(key, order_id, "USD", 1250, "tok_chargeDeclined")
        assert declined.value.reason == Reason.PAYMENT_DECLINED
        assert len(noted.statements) == 5, noted.statements

        # What the one statement of a capture wrote: the payment, its ledger
        # entry and the key's outcome.
        ledger = await noted.fetch(
            "SELECT kind, amount_minor FROM payments.ledger WHERE payment_id = $1",
            captured.payment_id,
        )
        assert [tuple(row) for row in ledger] == [("CHARGE", 1250)]
        outcome = await noted.fetchrow(
            "SELECT outcome, payment_id FROM payments.charge_keys WHERE idempotency_key = $1",
            captured.idempotency_key,
        )
        assert tuple(outcome) == ("CAPTURED", captured.payment_id)
        replayed = await payments.charge(
            captured.idempotency_key, captured.order_id, "USD", 1250, "tok_visa"
        )
        assert replayed == captured
