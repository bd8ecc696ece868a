"""`make bench` at a tiny size: the changes during a slow charge are sent, counted and judged.

Nothing here judges speed or the targets: every order must be asked its
changes once, every answer counted once, every order followed to its end and
judged (won, or lost with a reason), and each targeted row must carry its
verdict.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bench.conftest import SIZES

pytestmark = pytest.mark.e2e

ORDERS = SIZES["--changes"]
CALLS = ("UpdateShippingAddress", "CancelOrder", "full-view GetOrder")


def answered(answers: dict[str, Any]) -> int:
    """How many answers a call had, after checking that each is counted once and timed."""
    count = sum(answers["answers"].values())
    assert answers["latency"]["count"] == count
    if count:
        latency = answers["latency"]
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    return count


def test_every_order_is_asked_its_changes_once(run: dict[str, Any]) -> None:
    changes = run["changes"]
    assert changes["orders"] == ORDERS
    assert changes["changed"] + changes["cancelled"] == ORDERS
    assert changes["cancelled"] == ORDERS // 2
    asked = answered(changes["full_view"])
    # Asked once each, when seen RESERVED; an order whose charge was not seen is lost for it.
    assert asked + sum(n for kind, n in changes["lost"].items() if "charge" in kind) == ORDERS
    assert answered(changes["update"]) == asked
    assert answered(changes["cancel"]) <= changes["cancelled"]
    assert 0 <= changes["busy"] <= changes["full_view"]["answers"].get("OK", 0)
    assert 0 <= changes["updated_while_reserved"] <= changes["update"]["answers"].get("OK", 0)


def test_every_order_is_followed_to_its_end_and_judged(run: dict[str, Any]) -> None:
    changes = run["changes"]
    assert sum(changes["ended"].values()) == ORDERS
    assert set(changes["ended"]) <= {"ORDER_STATE_SHIPPED", "ORDER_STATE_CANCELLED"}
    assert changes["won"] + sum(changes["lost"].values()) == ORDERS
    assert "not judged" not in changes["lost"]


def test_the_changes_table_has_each_figure_with_its_verdict(run: dict[str, Any]) -> None:
    rows = {row["figure"]: row for row in run["rows"] if row["section"] == "changes"}
    for call in CALLS:
        for p in ("p50", "p99", "max"):
            assert f"changes: {call} during a step, {p}" in rows, (call, p)
        p99 = rows[f"changes: {call} during a step, p99"]
        assert p99["target"] == "<= 1000 ms" and isinstance(p99["met"], bool), p99
    assert rows["changes: answered from the projection (busy)"]["target"] is None
    won = rows["changes: orders where the change won"]
    assert won["target"] == f"== {ORDERS}" and isinstance(won["met"], bool), won
    assert won["measured"] == run["changes"]["won"]
    assert all(row["measured"] >= 0 for row in rows.values())
    assert run["meta"]["options"]["changes"] == {"orders": ORDERS, "in_flight": 5}
