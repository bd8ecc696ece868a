"""Migration 0004 binds the payment methods stored before it to their orders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clients.errors import Error, Reason
from server.core import database
from server.core.database import create_pool, migrate
from server.core.keyring import generate_keyring, parse_keyring
from server.payments.payment_methods import PaymentMethodStore
from tests.support.database import scratch_database

PAYMENTS_MIGRATIONS = database.MIGRATIONS / "payments"
BEFORE = ["0001_payments_ledger.sql", "0002_charge_keys.sql", "0003_payment_methods.sql"]
METHOD_ORDERS = "0004_payment_method_orders.sql"

ORDER = "ord_0123456789abcdef0123456789abcdef"
OTHER_ORDER = "ord_fedcba9876543210fedcba9876543210"


async def test_methods_stored_before_the_migration_charge_for_their_own_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = tmp_path / "migrations"
    (migrations / "payments").mkdir(parents=True)
    # The service's migrations as they stood before payment methods had orders.
    for name in BEFORE:
        shutil.copy(PAYMENTS_MIGRATIONS / name, migrations / "payments")
    monkeypatch.setattr(database, "MIGRATIONS", migrations)
    keyring = parse_keyring(generate_keyring("pm1"), source="test")

    async with scratch_database(tmp_path) as url:
        pool = await create_pool(url, max_size=4)
        try:
            assert await migrate(pool, "payments") == [1, 2, 3]
            # As the service stored them then: the front door's, under
            # "<order_id>:<content hash>", and one given without an order.
            for method_id, request_id in [
                ("pm_front_door", f"{ORDER}:{'c' * 64}"),
                ("pm_no_order", "req-legacy"),
            ]:
                nonce = os.urandom(12)
                ciphertext = AESGCM(keyring.current_key).encrypt(
                    nonce, b"tok_visa", method_id.encode()
                )
                await pool.execute(
                    """INSERT INTO payments.payment_methods
                         (payment_method_id, request_id, customer_id, key_id, token_nonce,
                          token_ciphertext, card_last4)
                       VALUES ($1, $2, 'cust-1', 'pm1', $3, $4, '4242')""",
                    method_id,
                    request_id,
                    nonce,
                    ciphertext,
                )

            shutil.copy(PAYMENTS_MIGRATIONS / METHOD_ORDERS, migrations / "payments")
            assert await migrate(pool, "payments") == [4]

            store = PaymentMethodStore(pool, keyring)
            assert await store.token("pm_front_door", order_id=ORDER) == "tok_visa"
            # Bound by its first charge, having no order of its own.
            assert await store.token("pm_no_order", order_id=OTHER_ORDER) == "tok_visa"
            for method_id, order_id in [("pm_front_door", OTHER_ORDER), ("pm_no_order", ORDER)]:
                with pytest.raises(Error) as refused:
                    await store.token(method_id, order_id=order_id)
                assert refused.value.reason == Reason.PAYMENT_METHOD_MISMATCH
        finally:
            await pool.close()
