"""Changes of mind during a step: answered at once, and the first one accepted wins.

Each order is placed with the slow test card (`tok_slow`), whose charge the
payments service holds for PAYMENTS_SLOW_SECONDS (3 s by default), by a
customer of its own, with its own token, a few orders at a time. Once
WatchOrder shows the order RESERVED (its charge under way), its customer
sends, one after the other, each timed from the caller: a full-view GetOrder
(which waits at most 0.8 s for the workflow, then answers from the projection
with `progress.busy`), an UpdateShippingAddress to an address of the order's
own, and, for every other order, a CancelOrder. The front door decides both
changes by fences in the database (server/orders/changes.py), so no answer
should wait for the charge.

Each order is then followed to its end. Its change won if the order only
changed shipped to the new address (the shipment's, read with the operator's
token), and the order also cancelled ended CANCELLED.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from bench.customers import Answer, Customers
from bench.driver import closed_loop, failure_kind
from bench.options import ChangesOptions
from bench.orders_load import CALL_TIMEOUT, RETRY_ATTEMPTS, RETRY_PAUSE, OrderTraffic
from bench.progress import Phases
from bench.stack import Platform
from bench.stats import Latency, tally
from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.shipping.v1 import shipping_pb2, shipping_pb2_grpc
from worker.model import SHIPPED_STATES, TERMINAL_STATES

# The test card whose charge the payments service holds for PAYMENTS_SLOW_SECONDS.
SLOW_CARD = "tok_slow"
# The most the changes' answers (and the full view's) should take, p99, however long the step.
ANSWER_MS = 1000.0
# A CreateOrder refused with one of these is repeated with the same request_id.
REPEATED = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})
CANCELLED = pb.OrderState.Name(pb.ORDER_STATE_CANCELLED)
_SHIPPED = frozenset(pb.OrderState.Name(state) for state in SHIPPED_STATES)


@dataclass
class _Order:
    """One order of the phase: what it is asked, how each call was answered, how it ended."""

    cancel: bool
    address: address_pb2.PostalAddress
    # The state first seen after PENDING when it was not RESERVED: the charge was missed.
    charge_missed: str = ""
    full_view: Answer | None = None
    busy: bool = False
    update: Answer | None = None
    # UpdateShippingAddress answered with the order still RESERVED: during the charge.
    updated_while_reserved: bool = False
    cancellation: Answer | None = None
    ended: str = ""
    won: bool = False
    # Why the change did not win.
    lost: str = ""

    @property
    def asked(self) -> bool:
        return self.full_view is not None


@dataclass(frozen=True)
class Answers:
    """Every answer to one kind of call of the phase, timed by the caller."""

    # OK, or CODE/REASON.
    answers: dict[str, int]
    latency: Latency

    @classmethod
    def of(cls, answers: list[Answer | None]) -> Answers:
        sent = [answer for answer in answers if answer is not None]
        return cls(
            answers=tally([answer.kind for answer in sent]),
            latency=Latency.of([answer.seconds for answer in sent]),
        )


@dataclass(frozen=True)
class Changes:
    orders: int
    in_flight: int
    # From the first CreateOrder to the last order's end.
    seconds: float
    full_view: Answers
    update: Answers
    cancel: Answers
    # Full-view GetOrders answered from the projection, the workflow being in its step.
    busy: int
    # UpdateShippingAddress answers that showed the order still RESERVED.
    updated_while_reserved: int
    # Orders whose address was changed and nothing else, and those cancelled as well.
    changed: int
    cancelled: int
    # Orders that ended as their changes asked, and why the others did not.
    won: int
    lost: dict[str, int]
    # The state each order was last seen in (SHIPPED once shipped: no longer followed).
    ended: dict[str, int]

    @classmethod
    def of(cls, options: ChangesOptions, seconds: float, orders: list[_Order]) -> Changes:
        return cls(
            orders=len(orders),
            in_flight=options.in_flight,
            seconds=round(seconds, 3),
            full_view=Answers.of([order.full_view for order in orders]),
            update=Answers.of([order.update for order in orders]),
            cancel=Answers.of([order.cancellation for order in orders]),
            busy=sum(order.busy for order in orders),
            updated_while_reserved=sum(order.updated_while_reserved for order in orders),
            changed=sum(not order.cancel for order in orders),
            cancelled=sum(order.cancel for order in orders),
            won=sum(order.won for order in orders),
            lost=tally([order.lost or "not judged" for order in orders if not order.won]),
            ended=tally([order.ended or "not seen" for order in orders]),
        )


def phase_count(options: ChangesOptions) -> int:
    return 1 if options.orders else 0


def new_address(index: int) -> address_pb2.PostalAddress:
    """Where order `index` is sent instead of where it was placed for: an address of its own."""
    return address_pb2.PostalAddress(
        name=f"Mary Somerville {index}",
        line1="2 Other Road",
        city="Manchester",
        postal_code="M1 1AE",
        country_code="GB",
    )


class ChangesScenario:
    def __init__(
        self,
        options: ChangesOptions,
        phases: Phases,
        platform: Platform,
        traffic: OrderTraffic,
    ) -> None:
        self._options = options
        self._phases = phases
        self._traffic = traffic
        run = uuid.uuid4().hex[:8]
        self._ids = [f"bench-{run}-changer-{i}" for i in range(options.orders)]
        self._customers = Customers.of(platform, self._ids)
        self._shipping = shipping_pb2_grpc.ShippingServiceStub(platform.channel("shipping"))

    async def run(self) -> Changes:
        count, in_flight = self._options.orders, self._options.in_flight
        orders = [_Order(cancel=i % 2 == 1, address=new_address(i)) for i in range(count)]
        at_once = min(count, in_flight)
        description = f"changes during a slow charge: {count} orders, {at_once} at a time"
        try:
            with self._phases.phase(description, count) as tick:
                samples = await closed_loop(
                    count, in_flight, lambda index: self._follow(index, orders[index]), tick
                )
        finally:
            await self._customers.close()
        return Changes.of(self._options, samples.seconds, orders)

    async def _follow(self, index: int, order: _Order) -> None:
        """Places the order, changes it during its charge, follows it to its end, judges it."""
        customer = self._ids[index]
        try:
            placed = await self._place(index, customer)
            if placed.code != "OK":
                order.lost = f"CreateOrder {placed.kind}"
                return
            await self._watch(customer, placed.order_id, order)
            order.lost = await self._why_lost(placed.order_id, order)
        except Exception as error:  # the run goes on; the order counts as lost, and why
            order.lost = failure_kind(error)
        order.won = not order.lost

    async def _place(self, index: int, customer: str) -> Answer:
        """CreateOrder with the slow card, repeated (same request_id) while it is refused."""
        request = self._traffic.request(index, customer)
        request.payment_token = SLOW_CARD
        answer = await self._customers.create(request)
        for attempt in range(1, RETRY_ATTEMPTS):
            if answer.code not in REPEATED:
                break
            await asyncio.sleep(RETRY_PAUSE * attempt)
            answer = await self._customers.create(request)
        return answer

    async def _watch(self, customer: str, order_id: str, order: _Order) -> None:
        """Follows the order until it has shipped or ended; changes it once it is RESERVED."""
        stream = self._customers.watch(customer, order_id)
        try:
            async for message in stream:
                state = message.order.state
                if not order.asked and not order.charge_missed:
                    if state == pb.ORDER_STATE_RESERVED:
                        await self._change(customer, order_id, order)
                    elif state != pb.ORDER_STATE_PENDING:
                        order.charge_missed = pb.OrderState.Name(state)
                if state in SHIPPED_STATES or state in TERMINAL_STATES:
                    order.ended = pb.OrderState.Name(state)
                    return
        finally:
            stream.cancel()

    async def _change(self, customer: str, order_id: str, order: _Order) -> None:
        """The full view, the new address and, for every other order, the cancellation."""
        calls, orders = self._customers, self._customers.orders
        full_view = pb.GetOrderRequest(order_id=order_id, view=pb.ORDER_VIEW_FULL)
        order.full_view, full = await calls.call(customer, orders.GetOrder, full_view)
        order.busy = full is not None and full.progress.busy
        update = pb.UpdateShippingAddressRequest(order_id=order_id, shipping_address=order.address)
        order.update, updated = await calls.call(customer, orders.UpdateShippingAddress, update)
        order.updated_while_reserved = (
            updated is not None and updated.order.state == pb.ORDER_STATE_RESERVED
        )
        if order.cancel:
            cancel = pb.CancelOrderRequest(order_id=order_id, reason="changed my mind")
            order.cancellation, _ = await calls.call(customer, orders.CancelOrder, cancel)

    async def _why_lost(self, order_id: str, order: _Order) -> str:
        """Why the order did not end as its changes asked ("" when it did)."""
        if order.charge_missed:
            return f"charge not seen: {order.charge_missed} first"
        for name, answer in (
            ("UpdateShippingAddress", order.update),
            ("CancelOrder", order.cancellation),
        ):
            if answer is not None and answer.code != "OK":
                return f"{name} {answer.kind}"
        if order.cancel:
            return "" if order.ended == CANCELLED else f"ended {order.ended or 'not seen'}"
        if order.ended not in _SHIPPED:
            return f"ended {order.ended or 'not seen'}"
        answer = await self._shipping.GetShipment(
            shipping_pb2.GetShipmentRequest(order_id=order_id), timeout=CALL_TIMEOUT
        )
        return "" if answer.shipment.address == order.address else "shipped to another address"
