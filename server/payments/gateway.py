"""A simulated card gateway driven by test tokens, as real providers offer.

    tok_visa            approved
    tok_chargeDeclined  declined
    tok_transient       unavailable on the first two attempts for a key, then approved
    tok_slow            approved after `slow_seconds`
    anything else       declined

Attempts are counted in Postgres so that the behaviour holds across retries
that land on different processes.
"""

from __future__ import annotations

import asyncio
import enum

import asyncpg

TRANSIENT_FAILURES = 2


class Outcome(enum.Enum):
    APPROVED = "approved"
    DECLINED = "declined"
    UNAVAILABLE = "unavailable"


class SimulatedGateway:
    def __init__(self, *, slow_seconds: float) -> None:
        self._slow_seconds = slow_seconds

    async def charge(self, conn: asyncpg.Connection, key: str, token: str) -> Outcome:
        """Asks the gateway to capture; `conn` records the attempt."""
        attempt = await conn.fetchval(
            """INSERT INTO payments.gateway_attempts (idempotency_key, attempts) VALUES ($1, 1)
               ON CONFLICT (idempotency_key)
               DO UPDATE SET attempts = payments.gateway_attempts.attempts + 1
               RETURNING attempts""",
            key,
        )
        match token:
            case "tok_visa":
                return Outcome.APPROVED
            case "tok_slow":
                await asyncio.sleep(self._slow_seconds)
                return Outcome.APPROVED
            case "tok_transient":
                return Outcome.UNAVAILABLE if attempt <= TRANSIENT_FAILURES else Outcome.APPROVED
            case _:
                return Outcome.DECLINED

    @staticmethod
    def card_last4(token: str) -> str:
        return "4242" if token == "tok_visa" else "0000"
