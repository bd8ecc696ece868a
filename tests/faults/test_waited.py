"""Which orders waited out a fault, and which of them ended otherwise than promised.

The long partner outage fails the run for an order that waited through it and
ended other than its card, address and cancellation say; this checks that
judgement on made-up orders, without a stack.
"""

from __future__ import annotations

import random
from typing import cast

from clients.proto.orders.v1 import orders_pb2 as pb
from tests.faults.calls import Tally
from tests.faults.fault import Injection
from tests.faults.mix import Kind, PlannedOrder, order_plan, stock_plan
from tests.faults.rounds import waited_out
from tests.faults.tracker import Tracker
from tests.support.stack import Stack

INJECTED, HEALED = 10.0, 70.0


def planned(kind: Kind, order_id: str, accepted_at: float) -> PlannedOrder:
    (order,) = order_plan(random.Random(1), "c", stock_plan("t", 1), 1, cancel_window=1.0)
    order.kind, order.order_id, order.accepted_at = kind, order_id, accepted_at
    return order


def test_orders_that_waited_must_end_as_their_card_says() -> None:
    tracker = Tracker(cast(Stack, None), "c", Tally(), lambda: 0.0)
    plan = [
        planned(Kind.GOOD, "shipped-after", 5.0),
        planned(Kind.GOOD, "failed-after", 5.0),
        planned(Kind.DECLINED, "declined-after", 5.0),
        planned(Kind.GOOD, "shipped-before", 5.0),
        planned(Kind.GOOD, "placed-after", 80.0),
        planned(Kind.GOOD, "still-running", 5.0),
    ]
    ends = {
        "shipped-after": (pb.ORDER_STATE_SHIPPED, "", 90.0),
        "failed-after": (pb.ORDER_STATE_FAILED, "DEPENDENCY_UNAVAILABLE", 90.0),
        "declined-after": (pb.ORDER_STATE_FAILED, "PAYMENT_DECLINED", 90.0),
        "shipped-before": (pb.ORDER_STATE_SHIPPED, "", 8.0),
        "placed-after": (pb.ORDER_STATE_SHIPPED, "", 95.0),
    }
    for order_id, (state, reason, settled_at) in ends.items():
        order = pb.Order(order_id=order_id, state=state)
        order.failure.reason = reason
        tracker.latest[order_id] = order
        tracker.settled_at[order_id] = settled_at
    tracker.latest["still-running"] = pb.Order(order_id="still-running", state=pb.ORDER_STATE_PAID)

    waited = waited_out(plan, tracker, Injection(INJECTED, HEALED, "test", on_target=True))

    # Accepted before the fault was over and unsettled when it was; the one
    # still running counts as waiting (the audit calls it stuck).
    assert waited.orders == 4
    assert waited.meant_to_ship == 3
    assert waited.shipped_after == 1
    assert waited.ended_otherwise == ["failed-after (good card): FAILED DEPENDENCY_UNAVAILABLE"]
