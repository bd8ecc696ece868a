"""The worker process's own business metrics (the workflows' go through the SDK's meter)."""

from __future__ import annotations

from prometheus_client import Counter

SHIPMENTS_REBOOKED = Counter(
    "order_shipments_rebooked_total",
    "Shipments booked again to the order's address, which changed after the first booking.",
)
