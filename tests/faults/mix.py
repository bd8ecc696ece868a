"""The orders a round places: cards, addresses, cancellations, and what each may become.

The simulated partners decide outcomes from the request alone
(protos/payments/v1/payments.proto lists the test tokens;
server/shipping/carrier.py refuses country ZZ), so each planned order knows
the ends it may legitimately reach whatever fault it meets.
"""

from __future__ import annotations

import enum
import random
import uuid
from dataclasses import dataclass, field

from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2 as pb
from tests.faults.calls import Answer

SHIPPED = pb.ORDER_STATE_SHIPPED
FAILED = pb.ORDER_STATE_FAILED
CANCELLED = pb.ORDER_STATE_CANCELLED
# An order is settled when it is over, or shipped and merely waiting for its
# delivery report (the audit does not report deliveries).
SHIPPED_STATES = frozenset(
    {pb.ORDER_STATE_SHIPPED, pb.ORDER_STATE_DELIVERY_OVERDUE, pb.ORDER_STATE_DELIVERED}
)
SETTLED_STATES = SHIPPED_STATES | {FAILED, CANCELLED}

UNDELIVERABLE_COUNTRY = "ZZ"


class Kind(enum.Enum):
    """What a planned order is meant to exercise; the value names it in the report."""

    GOOD = "good card"
    SLOW = "slow card"
    TRANSIENT = "gateway errors"
    DECLINED = "declined card"
    UNDELIVERABLE = "undeliverable"
    CANCELLED = "cancelled"


TOKENS = {
    Kind.GOOD: "tok_visa",
    Kind.SLOW: "tok_slow",
    Kind.TRANSIENT: "tok_transient",
    Kind.DECLINED: "tok_chargeDeclined",
    Kind.UNDELIVERABLE: "tok_visa",
    Kind.CANCELLED: "tok_visa",
}
# Out of 20 orders. Slow cards keep orders in the charge step long enough to
# be caught there; cancelled ones are cancelled after a random delay.
WEIGHTS = {
    Kind.GOOD: 8,
    Kind.SLOW: 3,
    Kind.TRANSIENT: 2,
    Kind.DECLINED: 2,
    Kind.UNDELIVERABLE: 2,
    Kind.CANCELLED: 3,
}
MAX_LINES = 3
MAX_UNITS_PER_LINE = 3


@dataclass
class Sku:
    sku: str
    price_minor: int
    stocked: int


@dataclass
class PlannedOrder:
    kind: Kind
    request: pb.CreateOrderRequest
    # Seconds after the order is accepted at which the caller cancels it.
    cancel_after: float = 0.0
    # Filled in as the round runs (times are seconds on the round's clock).
    sent_at: float | None = None
    accepted_at: float | None = None
    create: Answer[pb.CreateOrderResponse] = field(default_factory=Answer)
    cancel: Answer[pb.CancelOrderResponse] | None = None
    order_id: str = ""

    @property
    def request_id(self) -> str:
        return self.request.request_id

    def acceptable_ends(self) -> dict[int, frozenset[str]]:
        """The states this order may end in, with the failure reasons allowed in FAILED."""
        if self.kind is Kind.DECLINED:
            return {FAILED: frozenset({"PAYMENT_DECLINED"})}
        if self.kind is Kind.UNDELIVERABLE:
            return {FAILED: frozenset({"ADDRESS_UNDELIVERABLE"})}
        shipped: dict[int, frozenset[str]] = {state: frozenset() for state in SHIPPED_STATES}
        if self.kind is not Kind.CANCELLED:
            return shipped
        cancel = self.cancel
        if cancel is not None and cancel.response is not None:
            return {CANCELLED: frozenset()}  # the cancellation was accepted
        if cancel is not None and cancel.refusal_reason == "ALREADY_SHIPPED":
            return shipped
        if cancel is not None and cancel.refusal_reason == "ORDER_FINISHED":
            # An earlier attempt was accepted (its answer lost to a timeout)
            # and the order was cancelled by the time the caller repeated it.
            return {CANCELLED: frozenset()}
        return {**shipped, CANCELLED: frozenset()}


def stock_plan(label: str, orders: int) -> list[Sku]:
    """A round's own SKUs, stocked so that no order can run out."""
    units = orders * MAX_UNITS_PER_LINE
    prices = (1250, 399, 2599, 10, 74999)
    return [Sku(f"FLT-{label}-{i}", price, units) for i, price in enumerate(prices)]


def order_plan(
    rng: random.Random,
    customer_id: str,
    skus: list[Sku],
    orders: int,
    *,
    cancel_window: float,
) -> list[PlannedOrder]:
    kinds = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    plan = []
    for _ in range(orders):
        kind = rng.choices(kinds, weights)[0]
        lines = rng.sample(skus, rng.randint(1, MAX_LINES))
        request = pb.CreateOrderRequest(
            request_id=str(uuid.UUID(int=rng.getrandbits(128))),
            customer_id=customer_id,
            line_items=[
                pb.LineItemRequest(sku=s.sku, quantity=rng.randint(1, MAX_UNITS_PER_LINE))
                for s in lines
            ],
            shipping_address=address_pb2.PostalAddress(
                name="Ada Lovelace",
                line1="12 Analytical Row",
                city="London",
                postal_code="N1 9GU",
                country_code=UNDELIVERABLE_COUNTRY if kind is Kind.UNDELIVERABLE else "GB",
            ),
            payment_token=TOKENS[kind],
        )
        cancel_after = rng.uniform(0, cancel_window) if kind is Kind.CANCELLED else 0.0
        plan.append(PlannedOrder(kind, request, cancel_after))
    return plan
