"""Collects every bad field of a request, then fails once with all of them.

Country and currency codes are normalised in place to upper case on the way:
"us" and "usd" are as good as "US" and "USD".

Text fields refuse control characters: U+0000 cannot be stored by Postgres at
all (it would fail deep in SQL, or in a workflow step that retries forever),
and the others have no place in an identifier, a name or an address line.
"""

from __future__ import annotations

import re
from typing import Self

from clients.errors import FieldViolation, Reason, invalid
from clients.proto.common.v1 import address_pb2, money_pb2

# \Z, not $: "$" also matches before a trailing newline.
SKU = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
CURRENCY = re.compile(r"^[A-Z]{3}\Z")
COUNTRY = re.compile(r"^[A-Z]{2}\Z")
# C0 controls (NUL included), DEL and the C1 controls: Unicode category Cc.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Free text may span lines; it still refuses every other control character.
CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(value: str) -> bool:
    """Whether `value` holds a character no text field accepts (NUL among them)."""
    return CONTROL.search(value) is not None


class Violations:
    def __init__(self) -> None:
        self._found: list[FieldViolation] = []

    def add(self, field: str, description: str, reason: Reason = Reason.INVALID_ARGUMENT) -> Self:
        self._found.append(FieldViolation(field, description, reason))
        return self

    def require(self, field: str, value: str, *, max_length: int = 128) -> Self:
        """A required single-line text field: not blank, not too long, no control characters."""
        if not value.strip():
            return self.add(field, "is required")
        return self.optional(field, value, max_length=max_length)

    def optional(
        self, field: str, value: str, *, max_length: int = 200, multiline: bool = False
    ) -> Self:
        """A text field that may be empty; `multiline` lets free text hold line breaks and tabs."""
        if len(value) > max_length:
            self.add(field, f"must be at most {max_length} characters")
        if (CONTROL_BUT_LINES if multiline else CONTROL).search(value):
            self.add(field, "must not contain control characters such as U+0000")
        return self

    def sku(self, field: str, value: str) -> Self:
        if not SKU.match(value):
            self.add(field, "must be 1 to 64 letters, digits, '.', '_' or '-'")
        return self

    def money(self, field: str, money: money_pb2.Money, *, positive: bool = False) -> Self:
        # Codes are accepted in any case and stored in upper case.
        money.currency_code = money.currency_code.strip().upper()
        if not CURRENCY.match(money.currency_code):
            self.add(f"{field}.currency_code", "must be a three-letter ISO 4217 code, e.g. USD")
        if money.amount_minor < 0 or (positive and money.amount_minor == 0):
            self.add(
                f"{field}.amount_minor",
                "must be more than 0" if positive else "must not be negative",
            )
        return self

    def address(self, field: str, address: address_pb2.PostalAddress, present: bool) -> Self:
        if not present:
            return self.add(field, "is required")
        for name in ("name", "line1", "city", "postal_code"):
            self.require(f"{field}.{name}", getattr(address, name), max_length=200)
        for name in ("line2", "region"):
            self.optional(f"{field}.{name}", getattr(address, name), max_length=200)
        address.country_code = address.country_code.strip().upper()
        if not COUNTRY.match(address.country_code):
            self.add(f"{field}.country_code", "must be a two-letter ISO 3166-1 code, e.g. US")
        return self

    def __bool__(self) -> bool:
        return bool(self._found)

    def raise_if_any(self) -> None:
        if self._found:
            raise invalid(self._found)
