"""Amounts as people write them ("12.50 USD") and as the platform keeps them (1250 minor units)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from clients.proto.common.v1 import money_pb2

# Digits after the decimal point, by ISO 4217; two for every currency not listed.
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"), 0),
    **dict.fromkeys(("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def exponent(currency_code: str) -> int:
    return _EXPONENTS.get(currency_code.upper(), 2)


def parse_money(amount: str, currency_code: str) -> money_pb2.Money:
    """Money from "12.50" and "USD"; more decimals than the currency has is an error."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not an amount, e.g. 12.50") from None
    minor = value.scaleb(exponent(currency_code))
    if minor != minor.to_integral_value():
        raise ValueError(f"{currency_code} amounts have {exponent(currency_code)} decimals")
    return money_pb2.Money(currency_code=currency_code.upper(), amount_minor=int(minor))


def format_money(money: money_pb2.Money) -> str:
    """ "12.50 USD" for 1250 minor units of USD."""
    if not money.currency_code:
        return ""
    places = exponent(money.currency_code)
    major = Decimal(money.amount_minor).scaleb(-places)
    return f"{major:.{places}f} {money.currency_code}"
