"""A simulated carrier: books parcels after a while, except to country ZZ."""

from __future__ import annotations

import secrets
from datetime import timedelta

UNDELIVERABLE_COUNTRIES = frozenset({"ZZ"})


class SimulatedCarrier:
    def __init__(self, *, booking_seconds: float) -> None:
        self.booking_time = timedelta(seconds=booking_seconds)

    @property
    def books_at_once(self) -> bool:
        """Whether a booking is confirmed in the answer to the request itself."""
        return self.booking_time <= timedelta(0)

    @staticmethod
    def delivers_to(country_code: str) -> bool:
        return country_code not in UNDELIVERABLE_COUNTRIES

    @staticmethod
    def tracking_number() -> str:
        return f"1Z{secrets.token_hex(8).upper()}"
