"""Migration 0002 carries the keys of payments made before it, and the voided keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clients.errors import Error, Reason
from server.core import database
from server.core.database import create_pool, migrate
from server.payments.gateway import SimulatedGateway
from server.payments.repository import PaymentRepository
from tests.support.database import scratch_database

PAYMENTS_MIGRATIONS = database.MIGRATIONS / "payments"
BEFORE = "0001_payments_ledger.sql"
CHARGE_KEYS = "0002_charge_keys.sql"


async def test_keys_made_before_the_migration_follow_the_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = tmp_path / "migrations"
    (migrations / "payments").mkdir(parents=True)
    # The service's migrations as they stood before charge_keys.
    shutil.copy(PAYMENTS_MIGRATIONS / BEFORE, migrations / "payments")
    monkeypatch.setattr(database, "MIGRATIONS", migrations)

    async with scratch_database(tmp_path) as url:
        pool = await create_pool(url, max_size=4)
        try:
            assert await migrate(pool, "payments") == [1]
            await pool.execute(
                """INSERT INTO payments.payments
                     (payment_id, idempotency_key, order_id, currency_code, amount_minor,
                      refunded_amount_minor, state, card_last4)
                   VALUES ('pay_kept', 'ord_kept:charge', 'ord_kept', 'USD', 500, 0,
                           'CAPTURED', '4242'),
                          ('pay_back', 'ord_back:charge', 'ord_back', 'USD', 700, 700,
                           'REFUNDED', '4242')"""
            )
            await pool.execute(
                "INSERT INTO payments.voided_keys (idempotency_key) VALUES ('ord_void:charge')"
            )

            shutil.copy(PAYMENTS_MIGRATIONS / CHARGE_KEYS, migrations / "payments")
            assert await migrate(pool, "payments") == [2]
            # The service of today needs the migrations after it as well.
            for later in sorted(PAYMENTS_MIGRATIONS.glob("*.sql")):
                if later.name > CHARGE_KEYS:
                    shutil.copy(later, migrations / "payments")
            assert (await migrate(pool, "payments"))[0] == 3

            repository = PaymentRepository(pool, SimulatedGateway(slow_seconds=0))
            # The card of a payment made before hashes were kept is not compared.
            kept = await repository.charge("ord_kept:charge", "ord_kept", "USD", 500, "tok_visa")
            assert kept.payment_id == "pay_kept"
            with pytest.raises(Error) as reused:
                await repository.charge("ord_kept:charge", "ord_kept", "USD", 501, "tok_visa")
            assert reused.value.reason == Reason.IDEMPOTENCY_KEY_REUSED
            for key, order, amount in [
                ("ord_back:charge", "ord_back", 700),
                ("ord_void:charge", "ord_void", 900),
            ]:
                with pytest.raises(Error) as refused:
                    await repository.charge(key, order, "USD", amount, "tok_visa")
                assert refused.value.reason == Reason.CHARGE_VOIDED
            assert await pool.fetchval("SELECT to_regclass('payments.voided_keys')") is None
        finally:
            await pool.close()
