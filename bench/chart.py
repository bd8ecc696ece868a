"""The run as a picture: throughput, latencies, reads and the ratios against their targets."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.report import Row
from bench.results import Results

_PRODUCT, _BASELINE = "tab:blue", "tab:gray"


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def _bars(
    axes: Axes,
    labels: list[str],
    product: list[float],
    baseline: list[float],
    product_is: str,
    baseline_is: str,
    unit: str,
) -> None:
    """Pairs of bars, the platform's beside its baseline's, each with its value."""
    positions = range(len(labels))
    for shift, values, label, colour in (
        (-0.2, product, product_is, _PRODUCT),
        (0.2, baseline, baseline_is, _BASELINE),
    ):
        bars = axes.bar([p + shift for p in positions], values, 0.4, label=label, color=colour)
        axes.bar_label(bars, labels=[_label(v) for v in values], fontsize=7)
    axes.set_xticks(list(positions), labels, fontsize=8)
    axes.margins(y=0.15)
    axes.set_ylabel(unit)
    axes.legend(fontsize=7)


def draw(results: Results, table: list[Row], path: Path) -> None:
    figure, ((throughput, latency), (reads, ratios)) = plt.subplots(2, 2, figsize=(13, 8.5))
    concurrency = results.full_stack.concurrent.concurrency

    orders = results.full_stack.concurrent.per_second
    _bars(
        throughput,
        ["vs 4 regular activities", "vs the floor: 4 local, no sandbox"],
        [orders, orders],
        [
            results.baseline_workflow.concurrent.per_second,
            results.floor_workflow.concurrent.per_second,
        ],
        "orders/s, CreateOrder to SHIPPED",
        "bare workflows/s",
        "per second",
    )
    throughput.set_title(f"throughput, {concurrency} in flight", fontsize=10)

    full, base = results.full_stack.concurrent.latency, results.baseline_workflow.concurrent.latency
    create = results.create_order.concurrent.latency
    bare = results.bare_update_with_start.concurrent.latency
    _bars(
        latency,
        ["to SHIPPED p50", "p90", "p99", "CreateOrder p50", "p90", "p99"],
        [full.p50_ms, full.p90_ms, full.p99_ms, create.p50_ms, create.p90_ms, create.p99_ms],
        [base.p50_ms, base.p90_ms, base.p99_ms, bare.p50_ms, bare.p90_ms, bare.p99_ms],
        "platform",
        "bare workflow / bare update-with-start",
        "ms",
    )
    latency.set_title(f"latency, {concurrency} in flight", fontsize=10)

    kinds = ("get_order", "list_orders", "health")
    _bars(
        reads,
        ["GetOrder", "ListOrders", "health check"],
        [results.reads[k].per_second for k in kinds],
        [results.reads[f"bare_{k}"].per_second for k in kinds],
        "front door",
        "bare grpc.aio server",
        "calls/s",
    )
    reads.set_title(f"reads, {results.reads['get_order'].concurrency} in flight", fontsize=10)

    targeted = [row for row in table if row.target and row.ratio is not None]
    names = [row.figure.split(",")[0] for row in targeted]
    colours = ["tab:green" if row.met else "tab:red" for row in targeted]
    ratios.barh(names, [row.ratio or 0 for row in targeted], color=colours)
    for i, row in enumerate(targeted):
        bound = float((row.target or "= 0").split(" ")[1])
        ratios.plot([bound, bound], [i - 0.4, i + 0.4], color="black", lw=2)
    ratios.set_xlabel("ratio to the baseline (black: the target)")
    burst = results.burst
    ratios.set_title(
        f"ratios; burst of {burst.calls}: "
        + ", ".join(f"{code} {n}" for code, n in burst.codes.items()),
        fontsize=10,
    )
    ratios.tick_params(axis="y", labelsize=8)

    meta = results.meta
    instances = meta.get("instances", 1)
    figure.suptitle(
        f"make bench {meta['started_at']}  tree {meta['tree_commit'][:12]}  "
        f"Temporal {meta['temporal']['mode']}{'  (profiled)' if meta['profiled'] else ''}"
        + (f"  {instances} of each process" if instances > 1 else ""),
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
