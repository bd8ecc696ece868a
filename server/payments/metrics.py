"""The payment service's business metrics: money that moved, and how charges ended."""

from __future__ import annotations

from prometheus_client import Counter

CHARGES = Counter(
    "payments_charges_total",
    "Charges that reached the card gateway, by outcome (approved, declined, unavailable).",
    ["outcome"],
)
CHARGED = Counter(
    "payments_charged_amount_minor_total",
    "Money captured, in minor units of the currency (cents for USD).",
    ["currency"],
)
REFUNDED = Counter(
    "payments_refunded_amount_minor_total",
    "Money refunded, in minor units of the currency.",
    ["currency"],
)
