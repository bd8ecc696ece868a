"""`make bench --overload` at a tiny size: every figure is there and every call is counted.

Nothing here judges speed or the targets: capacity must be the closed loop's,
each call must be counted once, every refusal must be admission control's
RESOURCE_EXHAUSTED with its reason, every admitted order must be followed to
SHIPPED, and each targeted row must carry its verdict.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bench.conftest import OVERLOAD_SIZES

pytestmark = pytest.mark.e2e

FACTORS = [float(f) for f in str(OVERLOAD_SIZES["--overload-factors"]).split(",")]
ADMISSION_REASONS = {"RATE_LIMITED", "OVERLOADED"}


def every_calls(overload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each set of calls of the scenario, by name."""
    calls = {f"{level['factor']:g}x": level["calls"] for level in overload["levels"]}
    calls["flood"] = overload["flood"]["flooder"]
    calls["polite"] = overload["flood"]["polite"]
    return calls


def check_window(window: dict[str, Any]) -> None:
    """The machine's figures while calls were sent: every process's cores, the client's lag."""
    assert {"worker", "orders", "temporal", "bench", "caller", "all"} <= window["cores"].keys()
    assert window["cores"]["all"] >= max(window["cores"].values())
    assert window["client_lag"]["count"] > 0


def test_capacity_is_what_the_closed_loop_measured(run: dict[str, Any]) -> None:
    overload = run["overload"]
    concurrent = run["full_stack"]["concurrent"]
    # The rate while its concurrency was in flight, or the whole run's if too short to tell.
    steady = concurrent["steady_per_second"]
    assert overload["capacity_per_second"] == (steady or concurrent["per_second"]) > 0
    assert overload["capacity_whole_run_per_second"] == concurrent["per_second"]
    assert overload["capacity_concurrency"] == concurrent["concurrency"]
    assert (
        overload["capacity_create_p99_ms"] == run["create_order"]["concurrent"]["latency"]["p99_ms"]
    )
    assert overload["customers"] == OVERLOAD_SIZES["--overload-customers"]


def test_each_multiple_of_capacity_was_offered_for_its_time(run: dict[str, Any]) -> None:
    overload = run["overload"]
    levels = overload["levels"]
    assert [level["factor"] for level in levels] == FACTORS
    for level in levels:
        rate = level["factor"] * overload["capacity_per_second"]
        assert level["offered_per_second"] == pytest.approx(rate, abs=0.01)
        assert level["seconds"] == OVERLOAD_SIZES["--overload-seconds"]
        assert level["calls"]["calls"] == max(1, round(rate * level["seconds"]))
        assert level["goodput"] >= 0 and level["late_ms"] >= 0
        check_window(level["window"])
        assert 0 <= level["shipped_in_window"] <= level["calls"]["shipped"]
        assert sum(level["shipped_each_second"]) == level["calls"]["shipped"]


def test_every_call_is_counted_once(run: dict[str, Any]) -> None:
    flood = run["overload"]["flood"]
    check_window(flood["window"])
    assert flood["late_ms"] >= 0
    assert flood["flooder"]["calls"] == OVERLOAD_SIZES["--flood-calls"]
    assert flood["polite"]["calls"] == OVERLOAD_SIZES["--polite-orders"]
    for name, calls in every_calls(run["overload"]).items():
        answers = calls["answers"]
        assert sum(answers.values()) == calls["calls"], name
        assert answers.get("OK", 0) == calls["admitted"] == calls["admitted_latency"]["count"]
        refused = calls["calls"] - calls["admitted"]
        assert calls["refused_latency"]["count"] == refused, name


def test_every_refusal_is_resource_exhausted_with_its_reason(run: dict[str, Any]) -> None:
    refusals = 0
    for name, calls in every_calls(run["overload"]).items():
        for kind, count in calls["answers"].items():
            if kind == "OK":
                continue
            code, _, reason = kind.partition("/")
            assert code == "RESOURCE_EXHAUSTED" and reason in ADMISSION_REASONS, (name, kind)
            refusals += count
        assert sum(calls["rules"].values()) == calls["calls"] - calls["admitted"], name
    # One customer's flood is more than its rate lets in.
    flooder = run["overload"]["flood"]["flooder"]
    assert flooder["answers"].get("RESOURCE_EXHAUSTED/RATE_LIMITED", 0) > 0
    assert refusals >= flooder["calls"] - flooder["admitted"] > 0


def test_every_admitted_order_is_followed_to_shipped(run: dict[str, Any]) -> None:
    for name, calls in every_calls(run["overload"]).items():
        assert calls["not_shipped"] == {}, name
        assert calls["shipped"] == calls["admitted"] == calls["to_shipped"]["count"], name


def test_the_overload_table_has_each_figure_with_its_verdict(run: dict[str, Any]) -> None:
    rows = [row for row in run["rows"] if row["section"] == "overload"]
    figures = [row["figure"] for row in rows]
    assert figures[0].startswith("capacity: orders/s to SHIPPED")
    assert figures[1].startswith("capacity: CreateOrder p99")
    for factor in FACTORS:
        name = f"{factor:g}x"
        for figure, target in (
            ("goodput, orders/s to SHIPPED", ">= 0.9"),
            ("admitted CreateOrder p99", "<= 1.5"),
        ):
            (row,) = [row for row in rows if row["figure"] == f"{name}: {figure}"]
            assert row["target"] == target and isinstance(row["met"], bool), row
            assert row["baseline"] > 0 and row["ratio"] is not None, row
        assert f"{name}: CreateOrder refused" in figures
        assert f"{name}: refusal latency max" in figures
    for figure in (
        "flood: CreateOrder refused",
        "flood: refusals not RESOURCE_EXHAUSTED",
        "flood: refusal latency max",
        "polite customer: orders accepted",
        "polite customer: UNAVAILABLE",
        "polite customer: CreateOrder p99",
        "polite customer: orders shipped",
    ):
        assert figure in figures, figure
    for row in rows:
        assert row["measured"] >= 0, row
        if row["target"]:
            assert isinstance(row["met"], bool), row


def test_the_run_says_the_platform_ran_with_its_default_settings(run: dict[str, Any]) -> None:
    meta = run["meta"]
    assert meta["platform_env"] == {}
    assert meta["options"]["overload"]["enabled"] is True
