"""`make bench` at a tiny size: every figure is there, counted right, and sane.

Nothing here judges speed: the counts must add up, latencies must be ordered,
ratios must be positive, and the chart and the profiles must be written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.report import BUDGET
from bench.targets import CPU_BUDGETS
from tests.bench.conftest import ROOT, SIZES

READS = ("get_order", "list_orders", "health")

pytestmark = pytest.mark.e2e


def check_latency(latency: dict[str, float], count: int) -> None:
    assert latency["count"] == count
    assert 0 < latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"] <= latency["max_ms"]


def check_run(run: dict[str, Any], attempted: int, concurrency: int) -> None:
    assert run["errors"] == {}
    assert run["attempted"] == run["completed"] == attempted
    assert run["concurrency"] == concurrency
    assert run["per_second"] > 0
    check_latency(run["latency"], attempted)


def test_every_closed_loop_run_completed_what_it_was_asked(run: dict[str, Any]) -> None:
    concurrency, orders = SIZES["--concurrency"], SIZES["--orders"]
    check_run(run["baseline_workflow"]["concurrent"], SIZES["--workflows"], concurrency)
    check_run(run["floor_workflow"]["concurrent"], SIZES["--floor-workflows"], concurrency)
    check_run(run["full_stack"]["concurrent"], orders, concurrency)
    check_run(run["bare_update_with_start"]["concurrent"], orders, concurrency)
    for section in (
        "baseline_workflow",
        "floor_workflow",
        "full_stack",
        "create_order",
        "bare_update_with_start",
    ):
        check_latency(run[section]["one_at_a_time"], SIZES["--one-at-a-time"])


def test_create_order_counts_every_answer_of_the_orders_placed(run: dict[str, Any]) -> None:
    """A refused CreateOrder is repeated, so each order has one accepted call, or more calls."""
    create = run["create_order"]["concurrent"]
    refused = sum(create["errors"].values())
    assert create["completed"] == SIZES["--orders"]
    assert create["attempted"] == create["completed"] + refused
    check_latency(create["latency"], create["completed"])


def test_the_burst_is_counted_by_status_and_every_order_ships(run: dict[str, Any]) -> None:
    burst = run["burst"]
    assert burst["calls"] == SIZES["--burst"]
    assert sum(burst["codes"].values()) == burst["calls"]
    accepted = burst["codes"].get("OK", 0) + burst["recovered_on_retry"]
    assert burst["shipped_afterwards"] == accepted == burst["calls"]


def test_reads_are_measured_on_the_front_door_and_the_bare_server(run: dict[str, Any]) -> None:
    for kind in READS:
        for measured in (kind, f"bare_{kind}"):
            rate = run["reads"][measured]
            assert rate["errors"] == {}, measured
            assert rate["calls"] > 0 and rate["per_second"] > 0, measured
            assert rate["concurrency"] == SIZES["--read-concurrency"]
        assert run["read_message_bytes"][kind] > 0


def test_rows_carry_positive_ratios_and_judge_the_targets(run: dict[str, Any]) -> None:
    rows = [row for row in run["rows"] if row["section"] == ""]
    targeted = [row for row in rows if row["target"]]
    # orders/s against each baseline, latency p99, CreateOrder p99, burst, GetOrder, ListOrders
    assert len(targeted) == 7
    assert {"ms", "/s", "calls", "orders", "MiB"} <= {row["unit"] for row in rows}
    for row in rows:
        assert row["measured"] >= 0, row
        if row["baseline"] is not None:
            assert row["baseline"] > 0 and row["ratio"] > 0, row
        if row["target"]:
            assert isinstance(row["met"], bool), row
    assert all(run["rss_mib"][name] > 0 for name in ("worker", "orders"))


def test_cpu_is_shared_out_among_the_runs_processes(run: dict[str, Any]) -> None:
    cpu = run["cpu_ms"]
    per_order, per_workflow = cpu["per_order"], cpu["per_bare_workflow"]
    per_floor = cpu["per_floor_workflow"]
    # The database server runs on this machine, embedded or DATABASE_URL's.
    assert {"worker", "orders", "temporal", "postgres", "bench", "all"} <= per_order.keys()
    assert {"bare_worker", "temporal", "all"} <= per_workflow.keys()
    assert {"floor_worker", "temporal", "all"} <= per_floor.keys()
    for shares in (per_order, per_workflow, per_floor):
        assert all(ms >= 0 for ms in shares.values())
        assert shares["all"] > 0
        assert shares["all"] >= max(ms for name, ms in shares.items() if name != "all")
    busy = cpu["cores_busy"]
    assert busy.keys() == {"per_order", "per_bare_workflow", "per_floor_workflow", "machine"}
    assert all(0 < busy[phase] <= busy["machine"] for phase in busy)


def test_each_platform_process_measured_is_judged_against_its_budget(
    run: dict[str, Any],
) -> None:
    budget = [row for row in run["rows"] if row["section"] == BUDGET]
    per_order = run["cpu_ms"]["per_order"]
    measured = [b for b in CPU_BUDGETS if b.process in per_order]
    assert len(budget) == len(measured) + 1  # and the platform in all
    for row, spent in zip(budget, [*(per_order[b.process] for b in measured), None], strict=True):
        assert row["unit"] == "ms" and row["target"].startswith("<= ")
        assert isinstance(row["met"], bool), row
        if spent is not None:
            assert row["measured"] == spent


def test_the_run_says_what_it_ran_and_writes_its_chart_and_profiles(
    run: dict[str, Any],
) -> None:
    meta = run["meta"]
    assert all(Path(f).is_relative_to(ROOT) for f in meta["imported_from"])
    assert meta["temporal"]["mode"] == "memory"
    assert meta["orders_followed_with"] == "WatchOrder"
    chart = run["_out"].with_suffix(".png")
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert run["profiles"], "no profile was recorded"
    for name, files in run["profiles"].items():
        assert "error" not in files, (name, files)
        assert "samples" in Path(files["summary"]).read_text()
        assert Path(files["flame_graph"]).read_bytes().startswith(b"\x89PNG")
