"""The books after a round, read through the public API only.

Orders come from OrderService.ListOrders, money from PaymentService,
goods from InventoryService, parcels from ShippingService. Each rule below is
one the platform promises whatever fails:

- every request_id the caller sent has exactly one order (unless refused);
- every order settles;
- a shipped order is charged its total exactly once, any other order nothing;
- stock is conserved: stocked = on the shelf + shipped, nothing left reserved;
- a shipped order reserved exactly its lines;
- a shipped order has one booked shipment, to the order's address; any other
  order none in force.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from clients.proto.inventory.v1 import inventory_pb2 as inv
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.payments.v1 import payments_pb2 as pay
from clients.proto.shipping.v1 import shipping_pb2 as ship
from tests.faults.calls import Answer, Tally, rpc, until_answered
from tests.faults.mix import (
    CANCELLED,
    FAILED,
    SETTLED_STATES,
    SHIPPED_STATES,
    PlannedOrder,
    Sku,
)
from tests.support.stack import Stack

T = TypeVar("T")

ATTEMPT_TIMEOUT = 10.0
# The platform has settled by now; reads that still fail after this long are a finding.
READ_GIVE_UP_SECONDS = 120.0
READS_AT_ONCE = 16


@dataclass
class Findings:
    placed: int = 0
    orders: int = 0
    shipped: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    cancelled: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    charge_errors: list[str] = field(default_factory=list)
    stock_errors: list[str] = field(default_factory=list)
    shipment_errors: list[str] = field(default_factory=list)
    duplicate_requests: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    # Orders in flight through a fault that promises their outcomes
    # (Fault.strict_outcomes) and ended otherwise: filled in by the round.
    ended_wrongly: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    skus: int = 0

    @property
    def violations(self) -> int:
        """Broken promises: any of these fails the run."""
        return sum(
            len(found)
            for found in (
                self.lost,
                self.stuck,
                self.doubled,
                self.charge_errors,
                self.stock_errors,
                self.shipment_errors,
                self.duplicate_requests,
                self.ended_wrongly,
                self.unreadable,
            )
        )


def _differing_fields(one: Message, other: Message) -> list[str]:
    """The names of the fields in which two messages of a type differ."""
    return [
        field.name
        for field in one.DESCRIPTOR.fields
        if getattr(one, field.name) != getattr(other, field.name)
    ]


def state_name(state: int) -> str:
    return pb.OrderState.Name(state).removeprefix("ORDER_STATE_")  # type: ignore[arg-type]


class Auditor:
    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._reads = asyncio.Semaphore(READS_AT_ONCE)
        self._give_up_at = asyncio.get_running_loop().time() + READ_GIVE_UP_SECONDS
        self.findings = Findings()
        # The audit's own calls: not what callers saw, so not in the round's tally.
        self._tally = Tally()

    async def _read(self, method: str, call: Callable[[float], Awaitable[T]]) -> Answer[T]:
        loop = asyncio.get_running_loop()
        async with self._reads:
            answer = await until_answered(
                method,
                call,
                self._tally,
                attempt_timeout=ATTEMPT_TIMEOUT,
                give_up=lambda: loop.time() > self._give_up_at,
            )
        if not answer.answered:
            self.findings.unreadable.append(f"{method}: no answer")
        return answer

    def _absent(self, method: str, answer: Answer[T]) -> bool:
        """True when the read was answered NOT_FOUND; other refusals are findings."""
        if answer.refusal is None:
            return False
        if answer.refusal.code() == grpc.StatusCode.NOT_FOUND:
            return True
        self.findings.unreadable.append(
            f"{method}: {answer.refusal.code().name} {answer.refusal_reason}"
        )
        return False

    async def audit(self, plan: list[PlannedOrder], skus: list[Sku], customer_id: str) -> Findings:
        found = self.findings
        found.placed = len(plan)
        found.skus = len(skus)
        orders = await self._orders_of(customer_id)
        found.orders = len(orders)
        by_request: dict[str, list[pb.Order]] = defaultdict(list)
        for order in orders:
            by_request[order.request_id].append(order)
        self._check_requests(plan, by_request)
        planned = {p.request_id: p for p in plan}
        await asyncio.gather(
            *(self._check_order(order, planned.get(order.request_id)) for order in orders)
        )
        await self._check_stock(skus, orders)
        return found

    async def _orders_of(self, customer_id: str) -> list[pb.Order]:
        orders: list[pb.Order] = []
        token = ""
        while True:
            request = pb.ListOrdersRequest(customer_id=customer_id, page_size=500, page_token=token)
            answer = await self._read(
                "ListOrders",
                rpc(self._stack.orders.ListOrders, request),
            )
            if answer.response is None:
                return orders
            orders.extend(answer.response.orders)
            token = answer.response.next_page_token
            if not token:
                return orders

    def _check_requests(
        self, plan: list[PlannedOrder], by_request: dict[str, list[pb.Order]]
    ) -> None:
        found = self.findings
        for planned in plan:
            existing = by_request.get(planned.request_id, [])
            refusal = planned.create.refusal
            if refusal is not None:
                found.refused[f"{refusal.code().name}/{planned.create.refusal_reason}"] += 1
                if existing:
                    found.unexpected.append(
                        f"{existing[0].order_id}: exists though CreateOrder answered "
                        f"{refusal.code().name}"
                    )
            elif not existing:
                sent = "answered" if planned.create.answered else "never answered"
                found.lost.append(
                    f"request {planned.request_id} ({planned.kind.value}): no order; "
                    f"CreateOrder {sent} after {planned.create.attempts} attempts"
                )
            if len(existing) > 1:
                found.duplicate_requests.append(
                    f"request {planned.request_id}: orders "
                    + ", ".join(o.order_id for o in existing)
                )
            answered_id = planned.order_id
            if answered_id and existing and answered_id not in {o.order_id for o in existing}:
                found.duplicate_requests.append(
                    f"request {planned.request_id}: answered {answered_id}, stored "
                    + ", ".join(o.order_id for o in existing)
                )

    async def _check_order(self, order: pb.Order, planned: PlannedOrder | None) -> None:
        found = self.findings
        settled = order.state in SETTLED_STATES
        shipped = order.state in SHIPPED_STATES
        if shipped:
            found.shipped += 1
        elif order.state == FAILED:
            found.failed[order.failure.reason or "-"] += 1
        elif order.state == CANCELLED:
            found.cancelled += 1
        if settled and planned is not None:
            ends = planned.acceptable_ends()
            reasons = ends.get(order.state)
            if reasons is None or (reasons and order.failure.reason not in reasons):
                ending = state_name(order.state)
                if order.failure.reason:
                    ending += f" {order.failure.reason}"
                found.unexpected.append(f"{order.order_id} ({planned.kind.value}): {ending}")
        money, _, _ = await asyncio.gather(
            self._check_payments(order, settled, shipped),
            self._check_shipment(order, settled, shipped),
            self._check_reservation(order, settled, shipped),
        )
        if not settled:
            found.stuck.append(f"{await self._describe_stuck(order)}; {money}")

    async def _describe_stuck(self, order: pb.Order) -> str:
        answer = await self._read(
            "GetOrder",
            rpc(
                self._stack.orders.GetOrder,
                pb.GetOrderRequest(order_id=order.order_id, view=pb.ORDER_VIEW_FULL),
            ),
        )
        where = state_name(order.state)
        if answer.response is not None:
            progress = answer.response.progress
            where = state_name(answer.response.order.state)
            if not progress.workflow_running:
                where += ", its workflow is no longer running"
            if progress.current_step:
                where += f", step {progress.current_step} attempt {progress.current_step_attempt}"
            if progress.last_attempt_failure:
                where += f" ({progress.last_attempt_failure[:120]})"
            if progress.failing_compensations:
                where += f", failing {', '.join(progress.failing_compensations)}"
        return f"{order.order_id}: {where}"

    async def _check_payments(self, order: pb.Order, settled: bool, shipped: bool) -> str:
        """Checks the order's money; returns what was charged, for the report."""
        answer = await self._read(
            "ListPayments",
            rpc(
                self._stack.payments.ListPayments, pay.ListPaymentsRequest(order_id=order.order_id)
            ),
        )
        if answer.response is None:
            return "payments unreadable"
        payments = list(answer.response.payments)
        net = sum(p.amount_minor - p.refunded_amount_minor for p in payments)
        in_force = [p for p in payments if p.amount_minor > p.refunded_amount_minor]
        total = order.total.amount_minor
        expected = total if shipped else 0
        money = f"total {total}, net charged {net} over {len(payments)} payments"
        summary = f"{order.order_id} {state_name(order.state)}: {money}, {len(in_force)} in force"
        if net > total or len(in_force) > 1:
            self.findings.doubled.append(summary)
        elif settled and net != expected:
            self.findings.charge_errors.append(summary)
        return money

    async def _check_shipment(self, order: pb.Order, settled: bool, shipped: bool) -> None:
        if not settled:
            return
        answer = await self._read(
            "GetShipment",
            rpc(self._stack.shipping.GetShipment, ship.GetShipmentRequest(order_id=order.order_id)),
        )
        if not answer.answered:
            return
        absent = self._absent("GetShipment", answer)
        shipment = answer.response.shipment if answer.response is not None else None
        if shipment is None and not absent:
            return
        state = shipment.state if shipment is not None else ship.SHIPMENT_STATE_UNSPECIFIED
        where = ship.ShipmentState.Name(state) if shipment is not None else "no shipment"
        if shipped:
            tracking = shipment.tracking_number if shipment is not None else ""
            if state != ship.SHIPMENT_STATE_BOOKED or tracking != order.tracking_number:
                self.findings.shipment_errors.append(
                    f"{order.order_id} shipped as {order.tracking_number}: {where} {tracking}"
                )
            elif shipment is not None and shipment.address != order.shipping_address:
                differing = _differing_fields(shipment.address, order.shipping_address)
                self.findings.shipment_errors.append(
                    f"{order.order_id} shipped to another address than the order's"
                    f" (differs in {', '.join(differing)})"
                )
        elif state not in (ship.SHIPMENT_STATE_UNSPECIFIED, ship.SHIPMENT_STATE_CANCELLED):
            self.findings.shipment_errors.append(
                f"{order.order_id} {state_name(order.state)}: shipment {where}"
            )

    async def _check_reservation(self, order: pb.Order, settled: bool, shipped: bool) -> None:
        if not settled:
            return
        answer = await self._read(
            "GetReservation",
            rpc(
                self._stack.inventory.GetReservation,
                inv.GetReservationRequest(order_id=order.order_id),
            ),
        )
        if not answer.answered:
            return
        reserved: dict[str, int] | None = None
        if answer.response is not None:
            state = answer.response.reservation.state
            reserved = {line.sku: line.quantity for line in answer.response.reservation.lines}
        elif self._absent("GetReservation", answer):
            state = inv.RESERVATION_STATE_UNSPECIFIED  # none was ever made
        else:
            return
        wanted = (
            {inv.RESERVATION_STATE_COMMITTED}
            if shipped
            else {inv.RESERVATION_STATE_RELEASED, inv.RESERVATION_STATE_UNSPECIFIED}
        )
        if state not in wanted:
            self.findings.stock_errors.append(
                f"{order.order_id} {state_name(order.state)}: reservation "
                f"{inv.ReservationState.Name(state)}"
            )
        elif shipped and reserved is not None:
            # The inventory sums the units of a SKU named on several lines.
            ordered: Counter[str] = Counter()
            for line in order.line_items:
                ordered[line.sku] += line.quantity
            if reserved != dict(ordered):
                self.findings.stock_errors.append(
                    f"{order.order_id} {state_name(order.state)}: reserved {reserved},"
                    f" ordered {dict(ordered)}"
                )

    async def _check_stock(self, skus: list[Sku], orders: list[pb.Order]) -> None:
        shipped_units: Counter[str] = Counter()
        for order in orders:
            if order.state in SHIPPED_STATES:
                for line in order.line_items:
                    shipped_units[line.sku] += line.quantity

        async def check(sku: Sku) -> None:
            answer = await self._read(
                "GetStock",
                rpc(self._stack.inventory.GetStock, inv.GetStockRequest(sku=sku.sku)),
            )
            if answer.response is None:
                return
            shelf, reserved = answer.response.quantity, answer.response.reserved_quantity
            if shelf + shipped_units[sku.sku] != sku.stocked or reserved:
                self.findings.stock_errors.append(
                    f"{sku.sku}: stocked {sku.stocked}, on shelf {shelf} + shipped "
                    f"{shipped_units[sku.sku]}, {reserved} still reserved"
                )

        await asyncio.gather(*(check(sku) for sku in skus))
