"""One round: stock its SKUs, keep its orders in flight, inject its fault, let it settle, audit.

Every round has its own customer and SKUs, so its audit sees only its own
orders and stock, whatever the rounds before it left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from dataclasses import dataclass

from clients.proto.common.v1 import money_pb2
from clients.proto.inventory.v1 import inventory_pb2 as inv
from tests.faults.audit import Auditor, Findings, state_name
from tests.faults.calls import Tally, rpc, until_answered
from tests.faults.fault import Context, Fault, Injection, Timing
from tests.faults.load import Load
from tests.faults.mix import (
    SETTLED_STATES,
    SHIPPED_STATES,
    PlannedOrder,
    Sku,
    order_plan,
    stock_plan,
)
from tests.faults.stack import Platform
from tests.faults.tracker import Tracker
from tests.support.stack import Stack


@dataclass(frozen=True)
class RoundSize:
    orders: int  # placed in the round
    in_flight: int  # unsettled at most at once
    settle_timeout: float  # seconds an order may take to settle once the fault is over
    cancel_window: float  # cancellations come up to this long after acceptance


@dataclass
class Recovery:
    healed_after: float  # from the injection until the broken part was back
    # From the injection until every order in flight at that moment had settled;
    # None when one of them never did.
    recovered_after: float | None
    # The longest time, from the injection on, in which no order was seen to move.
    longest_stall: float
    # Orders settled per second over the round, fault included: the pace
    # against which the recovery time reads.
    settled_per_second: float


@dataclass
class Waited:
    """The orders in flight through the whole fault: accepted before it was
    over, and still unsettled when it was."""

    orders: int
    # Their card, address and cancellation say they should ship.
    meant_to_ship: int
    # Shipped after the fault was over.
    shipped_after: int
    # Settled other than their card, address and cancellation say (one that
    # never settled is stuck, and counted there).
    ended_otherwise: list[str]


@dataclass
class RoundResult:
    fault: Fault
    injection: Injection
    findings: Findings
    tally: Tally
    recovery: Recovery
    seconds: float
    waited: Waited


async def run_round(
    platform: Platform,
    fault: Fault,
    *,
    label: str,
    size: RoundSize,
    timing: Timing,
    rng: random.Random,
) -> RoundResult:
    loop = asyncio.get_running_loop()
    started = loop.time()

    def clock() -> float:
        return loop.time() - started

    stack = platform.stack
    customer_id = f"faults-{label}"
    skus = stock_plan(label, size.orders)
    await _stock(stack, skus)
    plan = order_plan(rng, customer_id, skus, size.orders, cancel_window=size.cancel_window)
    tally = Tally()
    tracker = Tracker(stack, customer_id, tally, clock)
    load = Load(
        stack,
        plan,
        tracker,
        tally,
        clock,
        in_flight=size.in_flight,
        settle_timeout=size.settle_timeout,
    )
    following = asyncio.create_task(tracker.run())
    placing = asyncio.create_task(load.run())
    try:
        injection = await fault.inject(Context(platform, load, timing))
        load.healed_at = injection.healed_at
        await placing
        await tracker.poll()
    finally:
        placing.cancel()
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(placing, following)
    findings = await Auditor(stack).audit(plan, skus, customer_id)
    recovery = _recovery(plan, tracker, injection)
    waited = waited_out(plan, tracker, injection)
    if fault.strict_outcomes:
        findings.ended_wrongly.extend(waited.ended_otherwise)
    return RoundResult(fault, injection, findings, tally, recovery, clock(), waited)


async def _stock(stack: Stack, skus: list[Sku], within: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    for sku in skus:
        request = inv.SetStockRequest(
            sku=sku.sku,
            quantity=sku.stocked,
            unit_price=money_pb2.Money(currency_code="USD", amount_minor=sku.price_minor),
        )
        answer = await until_answered(
            "SetStock",
            rpc(stack.inventory.SetStock, request),
            Tally(),
            attempt_timeout=10,
            give_up=lambda: loop.time() > deadline,
        )
        if answer.response is None:
            raise RuntimeError(f"could not stock {sku.sku}: {answer.refusal or 'no answer'}")


def _recovery(plan: list[PlannedOrder], tracker: Tracker, injection: Injection) -> Recovery:
    at = injection.injected_at
    caught = [
        p
        for p in plan
        if p.sent_at is not None
        and p.sent_at <= at
        and p.create.refusal is None
        and not (p.order_id in tracker.settled_at and tracker.settled_at[p.order_id] <= at)
    ]
    settled = [tracker.settled_at.get(p.order_id) for p in caught]
    done = [t for t in settled if t is not None]
    recovered_after = (max(done, default=at) - at) if len(done) == len(settled) else None
    end = at + recovered_after if recovered_after is not None else max(tracker.moves, default=at)
    moments = [at, *(m for m in tracker.moves if at < m <= end)]
    stall = max((b - a for a, b in itertools.pairwise(moments)), default=0.0)
    first_sent = min((p.sent_at for p in plan if p.sent_at is not None), default=0.0)
    last_settled = max(tracker.settled_at.values(), default=first_sent)
    pace = len(tracker.settled_at) / max(last_settled - first_sent, 1e-9)
    return Recovery(injection.healed_at - at, recovered_after, stall, pace)


def waited_out(plan: list[PlannedOrder], tracker: Tracker, injection: Injection) -> Waited:
    """The orders the fault held up, and how they ended (an unsettled one is stuck, not here)."""
    healed = injection.healed_at
    waited = [
        p
        for p in plan
        if p.order_id
        and p.accepted_at is not None
        and p.accepted_at <= healed
        and tracker.settled_at.get(p.order_id, float("inf")) > healed
    ]
    meant_to_ship = [p for p in waited if set(p.acceptable_ends()) <= SHIPPED_STATES]
    ended_otherwise = []
    shipped_after = 0
    for p in waited:
        order = tracker.latest.get(p.order_id)
        if order is None or order.state not in SETTLED_STATES:
            continue
        shipped_after += order.state in SHIPPED_STATES
        reasons = p.acceptable_ends().get(order.state)
        if reasons is None or (reasons and order.failure.reason not in reasons):
            ending = state_name(order.state)
            if order.failure.reason:
                ending += f" {order.failure.reason}"
            ended_otherwise.append(f"{p.order_id} ({p.kind.value}): {ending}")
    return Waited(len(waited), len(meant_to_ship), shipped_after, ended_otherwise)
