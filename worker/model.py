"""What the workflow and its activities exchange.

Plain dataclasses (and the public `orders.v1.Order` message), so fields can be
added compatibly. Nothing here has side effects: the workflow sandbox imports
it.

Annotations here are evaluated when the module loads, not postponed: the
data converter resolves a dataclass's field types each time it decodes one,
and postponed annotations are strings it must compile and evaluate each time,
a sixth of a millisecond per OrderInput (docs/performance.md).
"""

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from clients.errors import Reason
from clients.proto.common.v1 import address_pb2, money_pb2
from clients.proto.orders.v1 import orders_pb2

# Business failures: retrying the same call cannot succeed (`Reason.final`,
# clients/errors.py decides which). Declared on every forward step's retry
# policy so Temporal never retries them.
BUSINESS_ERRORS = [reason.value for reason in Reason if reason.final]


# Groups of order states, shared by the workflow and the front door.
TERMINAL_STATES = (
    orders_pb2.ORDER_STATE_DELIVERED,
    orders_pb2.ORDER_STATE_CANCELLED,
    orders_pb2.ORDER_STATE_FAILED,
)
SHIPPED_STATES = (
    orders_pb2.ORDER_STATE_SHIPPED,
    orders_pb2.ORDER_STATE_DELIVERY_OVERDUE,
    orders_pb2.ORDER_STATE_DELIVERED,
)

DEFAULT_TRACKING_PERIOD = 24 * 3600.0
DEFAULT_ESCALATION = 7 * 24 * 3600.0


@dataclass
class Line:
    sku: str
    quantity: int
    unit_price_minor: int


@dataclass
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country_code: str
    line2: str = ""
    region: str = ""

    @classmethod
    def from_proto(cls, message: address_pb2.PostalAddress) -> "Address":
        return cls(
            name=message.name,
            line1=message.line1,
            line2=message.line2,
            city=message.city,
            region=message.region,
            postal_code=message.postal_code,
            country_code=message.country_code,
        )

    def to_proto(self) -> address_pb2.PostalAddress:
        return address_pb2.PostalAddress(**dataclasses.asdict(self))


@dataclass
class OrderInput:
    """Everything the workflow needs, fixed when the order is accepted."""

    order_id: str
    request_id: str
    # Hash of the request's content: a repeat of the same request_id with
    # another content is told apart by it.
    fingerprint: str
    customer_id: str
    currency_code: str
    lines: list[Line]
    address: Address
    # Orders accepted before payment methods carried the card token itself;
    # such an order, still running, is charged with it. Never set now: the
    # token must not enter the workflow's history.
    payment_token: str = ""
    # Delivery tracking: how often its workflow continues as new, and after
    # how long without a delivery report the order escalates.
    tracking_period_seconds: float = DEFAULT_TRACKING_PERIOD
    escalate_after_seconds: float = DEFAULT_ESCALATION
    # When the front door accepted the order (epoch seconds): its create_time.
    # 0 for orders accepted before it was sent; the workflow's start time then.
    accepted_at: float = 0.0
    # The card, as a payment method the payment service keeps
    # (PaymentService.CreatePaymentMethod); the token stays there.
    payment_method_id: str = ""


def new_order(order: OrderInput, accepted: datetime) -> orders_pb2.Order:
    """The order as accepted, PENDING: what the front door stores and the workflow starts from."""
    currency = order.currency_code

    def money(amount: int) -> money_pb2.Money:
        return money_pb2.Money(currency_code=currency, amount_minor=amount)

    message = orders_pb2.Order(
        order_id=order.order_id,
        state=orders_pb2.ORDER_STATE_PENDING,
        request_id=order.request_id,
        customer_id=order.customer_id,
        line_items=[
            orders_pb2.LineItem(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=money(line.unit_price_minor),
                line_total=money(line.unit_price_minor * line.quantity),
            )
            for line in order.lines
        ],
        total=money(sum(line.unit_price_minor * line.quantity for line in order.lines)),
        shipping_address=order.address.to_proto(),
    )
    message.create_time.FromDatetime(accepted)
    message.update_time.FromDatetime(accepted)
    return message


@dataclass
class TrackingInput:
    """What a delivery-tracking run needs; carried over each continue-as-new."""

    order_id: str
    shipped_at_epoch: float
    period_seconds: float = DEFAULT_TRACKING_PERIOD
    escalate_after_seconds: float = DEFAULT_ESCALATION
    escalated: bool = False
    # How many runs came before this one, for logs and tests.
    rollovers: int = 0


@dataclass
class Progress:
    """What the order workflow is doing now; answer of its `progress` query."""

    current_step: str
    pending_compensations: list[str]
    failing_compensations: list[str]
    cancel_requested: bool
    # Of a step the workflow retries itself (a local one); 0 when it is the
    # server that retries the step, which then knows the attempt.
    current_step_attempt: int = 0
    last_attempt_failure: str = ""


@dataclass
class ReserveInput:
    order_id: str
    lines: list[Line]


@dataclass
class ChargeInput:
    order_id: str
    currency_code: str
    amount_minor: int
    # One of the two: the payment method, or the token of an order accepted
    # before payment methods (see OrderInput).
    payment_token: str = ""
    payment_method_id: str = ""


@dataclass
class ShippingInput:
    order_id: str
    address: Address
    item_count: int
    # The booking was already requested (by book_shipment): only wait for it.
    requested: bool = False
    # The order's changes are fenced (server/orders/changes.py): the booking
    # goes to the address last accepted, and a cancellation accepted first
    # stops it (CANCELLED_FIRST).
    fenced: bool = False


@dataclass
class Shipped:
    shipment_id: str
    tracking_number: str
    # Where the shipment goes, as the carrier has it (fenced bookings only).
    address: Address | None = None
    # Under the shipped-record patch, what became of the write of the order as
    # shipped, made by the booking's own activity (WRITTEN, REFUSED, UNWRITTEN).
    written: str = ""


# A fenced step found a cancellation that the front door accepted before it:
# the step did not go on, and the workflow cancels the order.
CANCELLED_FIRST = "CANCELLED_FIRST"

# The first write of a new order, made by its reserve step (the
# first-write-in-reserve patch), did not happen: the step reserved nothing,
# and the workflow stores the order on its own, which decides whether the
# order can be stored at all (worker/workflows.py, `_store_and_reserve`).
NOT_STORED = "ORDER_NOT_STORED"


@dataclass
class Charged:
    payment_id: str
    # Under the step-records patch, what became of the write of the order as
    # paid, made by the same activity (WRITTEN, REFUSED or UNWRITTEN).
    written: str = ""


# What became of the projection write a step's own activity made once the
# step succeeded (the step-records patch, worker/workflows.py): written; refused
# for its content, so the order is flagged, as for any write the database
# refuses; or not taken now (the database was out of reach), so the workflow
# writes it on its own, with the retries of its own writes.
WRITTEN = "written"
REFUSED = "refused"
UNWRITTEN = "unwritten"


@dataclass
class ShippingProgress:
    """Heartbeat details of arrange_shipping: where a retry picks up."""

    shipment_id: str = ""
    polls: int = 0


def idempotency_key(order_id: str) -> str:
    """The payment key of an order's one charge."""
    return f"{order_id}:charge"
