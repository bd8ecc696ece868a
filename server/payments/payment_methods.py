"""Payment methods: card tokens kept for later charges by reference.

The token is stored encrypted (AES-256-GCM under the service's keyring, the
payment method id as associated data) and is read back only to charge the
card. Keys rotate as every keyring does (server/core/keyring.py): a new
token is encrypted under the current key, an old one decrypts under the key
it names.

A payment method is charged for one order only: the one it was given for
(see payments.proto, "Payment methods"). One given without an order is bound
to the order of its first charge.
"""

from __future__ import annotations

import hmac
import os
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clients.errors import Error, FieldViolation, Reason, invalid
from server.core.keyring import Keyring
from server.payments.gateway import SimulatedGateway

NONCE_BYTES = 12

_COLUMNS = """payment_method_id, request_id, customer_id, order_id, key_id, token_nonce,
              token_ciphertext, card_last4, created_at"""


@dataclass(frozen=True)
class PaymentMethod:
    payment_method_id: str
    customer_id: str
    order_id: str | None  # None until charged when given without an order
    card_last4: str
    created_at: datetime


class PaymentMethodStore:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring) -> None:
        self._pool = pool
        self._current_id = keyring.current_id
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    async def create(
        self, request_id: str, customer_id: str, token: str, order_id: str = ""
    ) -> PaymentMethod:
        """Stores the card, bound to `order_id` when one is given.

        A repeat of `request_id` with the same content returns the first.
        """
        payment_method_id = f"pm_{uuid.uuid4().hex}"
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[self._current_id].encrypt(
            nonce, token.encode(), payment_method_id.encode()
        )
        row = await self._pool.fetchrow(
            f"""INSERT INTO payments.payment_methods
                  (payment_method_id, request_id, customer_id, order_id, key_id,
                   token_nonce, token_ciphertext, card_last4)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (request_id) DO NOTHING
                RETURNING {_COLUMNS}""",
            payment_method_id,
            request_id,
            customer_id,
            order_id or None,
            self._current_id,
            nonce,
            ciphertext,
            SimulatedGateway.card_last4(token),
        )
        if row is None:  # a repeat: the first one stands if it is the same request
            row = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM payments.payment_methods WHERE request_id = $1",
                request_id,
            )
            assert row is not None
            same_token = hmac.compare_digest(self._decrypt(row).encode(), token.encode())
            # A method stored without an order (or before orders were kept)
            # has none to compare: its first charge binds it.
            other_order = row["order_id"] is not None and row["order_id"] != order_id
            if row["customer_id"] != customer_id or not same_token or other_order:
                raise Error(
                    Reason.REQUEST_ID_REUSED,
                    "this request_id was already used for another customer, card or order",
                    {"request_id": request_id, "payment_method_id": row["payment_method_id"]},
                )
        return PaymentMethod(
            row["payment_method_id"],
            row["customer_id"],
            row["order_id"],
            row["card_last4"],
            row["created_at"],
        )

    async def token(self, payment_method_id: str, *, order_id: str) -> str:
        """The card token of a payment method, to charge it for `order_id`.

        Refused (PAYMENT_METHOD_MISMATCH) when the method was given for
        another order; one given without an order is bound to `order_id` now.
        """
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM payments.payment_methods WHERE payment_method_id = $1",
            payment_method_id,
        )
        if row is None:
            raise invalid(
                [FieldViolation("payment_method_id", f"no payment method {payment_method_id}")]
            )
        bound = row["order_id"]
        if bound is None:
            # The row lock makes the first of concurrent charges the one that binds.
            bound = await self._pool.fetchval(
                """UPDATE payments.payment_methods SET order_id = coalesce(order_id, $2)
                    WHERE payment_method_id = $1 RETURNING order_id""",
                payment_method_id,
                order_id,
            )
        if bound != order_id:
            raise Error(
                Reason.PAYMENT_METHOD_MISMATCH,
                "this payment method was given for another order; it is charged for that"
                " order only",
                {"payment_method_id": payment_method_id, "order_id": order_id},
            )
        return self._decrypt(row)

    def _decrypt(self, row: asyncpg.Record) -> str:
        cipher = self._ciphers.get(row["key_id"])
        if cipher is None:
            # Data under a key that left the ring: an operator's mistake, not the caller's.
            raise RuntimeError(
                f"payment method {row['payment_method_id']} is encrypted under key"
                f" {row['key_id']!r}, which is not in PAYMENT_METHOD_KEYS"
            )
        try:
            plain = cipher.decrypt(
                row["token_nonce"], row["token_ciphertext"], row["payment_method_id"].encode()
            )
        except InvalidTag:
            raise RuntimeError(
                f"payment method {row['payment_method_id']}: its token failed authentication"
            ) from None
        return plain.decode()
