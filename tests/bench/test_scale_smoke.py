"""`make bench --scale 2` at a tiny size: every instance runs, and figures are by process.

Nothing here judges speed: the orders must all ship, every instance must be
started and measured, and the figures must have one entry per process, its
instances added up.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.instances import PROCESSES
from tests.bench.conftest import SCALE, SIZES

pytestmark = pytest.mark.e2e

INSTANCES = {f"{kind}.{number}" for kind in PROCESSES for number in range(2, SCALE + 1)}


def test_every_order_ships_through_the_scaled_platform(scaled_run: dict[str, Any]) -> None:
    concurrent = scaled_run["full_stack"]["concurrent"]
    assert concurrent["errors"] == {}
    assert concurrent["completed"] == SIZES["--orders"]
    assert scaled_run["burst"]["shipped_afterwards"] == SIZES["--burst"]
    assert scaled_run["meta"]["instances"] == SCALE


def test_each_instance_of_each_process_ran_and_was_measured(scaled_run: dict[str, Any]) -> None:
    """CPU is watched for every instance. At this size a small process's share rounds to 0,
    and Temporal may give one worker every order; the front doors' logs show both took
    orders (the burst's calls alternate between them)."""
    by_instance = scaled_run["cpu_ms"]["per_order_by_instance"]
    assert {*PROCESSES, *INSTANCES} <= by_instance.keys()
    assert {*PROCESSES, *INSTANCES} <= scaled_run["rss_mib"].keys()
    logs = scaled_run["_out"].with_suffix("")
    for name in ("orders", *(n for n in INSTANCES if n.startswith("orders."))):
        assert "order accepted" in (logs / f"{name}.log").read_text(), name
    for name in ("worker", *(n for n in INSTANCES if n.startswith("worker."))):
        assert "worker polling" in (logs / f"{name}.log").read_text(), name


def test_cpu_and_its_budget_are_by_process(scaled_run: dict[str, Any]) -> None:
    per_order = scaled_run["cpu_ms"]["per_order"]
    by_instance = scaled_run["cpu_ms"]["per_order_by_instance"]
    assert not INSTANCES & per_order.keys()
    for kind in ("orders", "worker"):
        added = sum(ms for name, ms in by_instance.items() if name.partition(".")[0] == kind)
        assert per_order[kind] == pytest.approx(added, abs=0.1 * SCALE)
    front_door = next(
        row for row in scaled_run["rows"] if row["figure"] == "CPU per order: front door (orders)"
    )
    assert front_door["measured"] == per_order["orders"]
