"""The run's figures as a table of rows: measured, baseline, ratio, target.

The same rows are printed, written to the JSON file beside the raw results,
and drawn (bench/chart.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.changes import ANSWER_MS, Changes
from bench.instances import kind_of
from bench.overload import REFUSAL_CODE, REFUSAL_MS, Calls, Overload
from bench.results import Results
from bench.targets import (
    CPU_BUDGETS,
    CREATE_ORDER_P99,
    GET_ORDER,
    LATENCY_P99,
    LIST_ORDERS,
    ORDERS_PER_SECOND,
    ORDERS_PER_SECOND_FLOOR,
    ORDERS_PER_SECOND_FLOOR_AIM,
    Budget,
)
from bench.window import Window

# Rows of the changes of mind, of the overload scenario (make bench --overload)
# and of the CPU budget are printed in tables of their own.
CHANGES = "changes"
OVERLOAD = "overload"
BUDGET = "CPU budget"


@dataclass(frozen=True)
class Row:
    figure: str
    unit: str
    measured: float
    baseline: float | None = None
    baseline_is: str = ""
    # measured / baseline
    ratio: float | None = None
    # ">= 1.0", "<= 1.5", "== 0": what the project aims for.
    target: str | None = None
    met: bool | None = None
    # Why a target counts as missed although the ratio meets it, and the like.
    note: str = ""
    # The table the row is printed in: "" for the main one, CHANGES, OVERLOAD, BUDGET.
    section: str = ""


def _compare(
    figure: str,
    unit: str,
    measured: float,
    baseline: float,
    baseline_is: str,
    target: str | None = None,
) -> Row:
    ratio = round(measured / baseline, 3) if baseline else None
    met = None
    if target is not None and ratio is not None:
        operator, _, bound = target.partition(" ")
        met = ratio >= float(bound) if operator == ">=" else ratio <= float(bound)
    return Row(figure, unit, measured, baseline, baseline_is, ratio, target, met)


def rows(results: Results) -> list[Row]:
    concurrency = results.full_stack.concurrent.concurrency
    full, base = results.full_stack, results.baseline_workflow
    create, bare = results.create_order, results.bare_update_with_start
    reads = results.reads
    bare_workflow = "bare 4-activity workflow"
    # What a floor workflow cost in CPU: the host's pace, which the budgets are judged by.
    floor_cpu_ms = (results.cpu_ms.get("per_floor_workflow") or {}).get("all")
    table = [
        _compare(
            f"orders/s to SHIPPED, {concurrency} in flight",
            "/s",
            full.concurrent.per_second,
            base.concurrent.per_second,
            f"{bare_workflow}s/s",
            ORDERS_PER_SECOND,
        ),
        _against_the_floor(
            _compare(
                f"orders/s to SHIPPED vs the floor, {concurrency} in flight",
                "/s",
                full.concurrent.per_second,
                results.floor_workflow.concurrent.per_second,
                "floor workflows/s (4 local activities, no sandbox)",
                ORDERS_PER_SECOND_FLOOR,
            ),
            floor_cpu_ms,
            results.cpu_ms.get("cores_busy") or {},
        ),
    ]
    for p in ("p50", "p90", "p99"):
        table.append(
            _compare(
                f"latency to SHIPPED {p}, {concurrency} in flight",
                "ms",
                getattr(full.concurrent.latency, f"{p}_ms"),
                getattr(base.concurrent.latency, f"{p}_ms"),
                bare_workflow,
                LATENCY_P99 if p == "p99" else None,
            )
        )
    table.append(
        _compare(
            "latency to SHIPPED p50, one at a time",
            "ms",
            full.one_at_a_time.p50_ms,
            base.one_at_a_time.p50_ms,
            bare_workflow,
        )
    )
    not_shipped = full.concurrent.attempted - full.concurrent.completed
    table.append(
        Row(
            f"orders that did not ship, {concurrency} in flight",
            "orders",
            not_shipped,
            note=_kinds(full.concurrent.errors),
        )
    )
    for p in ("p50", "p90", "p99"):
        table.append(
            _compare(
                f"CreateOrder {p}, {concurrency} orders in flight",
                "ms",
                getattr(create.concurrent.latency, f"{p}_ms"),
                getattr(bare.concurrent.latency, f"{p}_ms"),
                "bare update-with-start",
                CREATE_ORDER_P99 if p == "p99" else None,
            )
        )
    refused = create.concurrent.attempted - create.concurrent.completed
    if refused:
        # Latencies are of the answered calls: a refused call is not fast.
        table[-1] = dataclasses.replace(table[-1], met=False, note=f"{refused} calls refused")
    table.append(
        Row(
            f"CreateOrder refused, {concurrency} orders in flight",
            "calls",
            refused,
            note=_kinds(create.concurrent.errors),
        )
    )
    table.append(
        _compare(
            "CreateOrder p50, one at a time",
            "ms",
            create.one_at_a_time.p50_ms,
            bare.one_at_a_time.p50_ms,
            "bare update-with-start",
        )
    )
    burst = results.burst
    unavailable = burst.codes.get("UNAVAILABLE", 0)
    table.append(
        Row(
            f"burst of {burst.calls} CreateOrder: UNAVAILABLE",
            "calls",
            unavailable,
            target="== 0",
            met=unavailable == 0,
            note=_kinds(burst.codes),
        )
    )
    table.append(
        Row(
            f"burst of {burst.calls} CreateOrder: shipped in the end",
            "orders",
            burst.shipped_afterwards,
            note=f"{burst.recovered_on_retry} after a repeat" if burst.recovered_on_retry else "",
        )
    )
    names = {"get_order": "GetOrder", "list_orders": "ListOrders", "health": "health check"}
    read_targets = {"get_order": GET_ORDER, "list_orders": LIST_ORDERS}
    for kind, name in names.items():
        rate = reads[kind]
        table.append(
            _compare(
                f"{name} calls/s, {rate.concurrency} in flight",
                "/s",
                rate.per_second,
                reads[f"bare_{kind}"].per_second,
                "bare grpc.aio server",
                read_targets.get(kind),
            )
        )
    per_order = results.cpu_ms.get("per_order")
    for figure, key, baseline_is in (
        ("CPU per order, all the run's processes", "per_bare_workflow", "per bare workflow"),
        (
            "CPU per order vs the floor, all the run's processes",
            "per_floor_workflow",
            "per floor workflow",
        ),
    ):
        per_workflow = results.cpu_ms.get(key)
        if per_order and per_workflow:
            table.append(_compare(figure, "ms", per_order["all"], per_workflow["all"], baseline_is))
    for process, label in (("worker", "worker"), ("orders", "front door")):
        table.append(_rss_row(results.rss_mib, process, label))
    if results.changes is not None:
        table += changes_rows(results.changes)
    if results.overload is not None:
        table += overload_rows(results.overload)
    table += budget_rows(per_order or {}, floor_cpu_ms)
    return table


def _rss_row(rss_mib: dict[str, float], process: str, label: str) -> Row:
    """The process's resident memory at the end; under --scale, its largest instance's."""
    instances = [mib for name, mib in rss_mib.items() if kind_of(name) == process]
    note = f"the largest of {len(instances)}" if len(instances) > 1 else ""
    return Row(f"RSS of the {label} at the end", "MiB", max(instances), note=note)


def _against_the_floor(row: Row, floor_cpu_ms: float | None, cores_busy: dict[str, float]) -> Row:
    """The floor's row says whether the aim beyond its target is reached, the floor's pace,
    and how busy the machine's cores were while each side ran.

    The ratio falls as the host gets faster: the floor gains more from it than
    the platform does (docs/performance.md, "The floor's ratio follows the
    host's pace"), so the row says what the floor's workflows cost this run.
    The orders are held back by the CPU and the floor is not ("What holds
    each closed loop back"): the cores busy say whether that held in the run.
    """
    if row.ratio is None:
        return row
    aim = ORDERS_PER_SECOND_FLOOR_AIM
    note = f"aim {aim:g}: " + ("reached" if row.ratio >= aim else "not yet")
    if floor_cpu_ms:
        note += f"; the floor at {floor_cpu_ms:.1f} ms of CPU a workflow"
    orders, floor = cores_busy.get("per_order"), cores_busy.get("per_floor_workflow")
    if orders is not None and floor is not None:
        note += (
            f"; cores busy: {orders:.2f} (orders), {floor:.2f} (floor) of {cores_busy['machine']:g}"
        )
    return dataclasses.replace(row, note=note)


def budget_rows(
    per_order: dict[str, float],
    floor_ms: float | None,
    budgets: Sequence[Budget] = CPU_BUDGETS,
) -> list[Row]:
    """Each platform process's CPU per order against its budget, then the budgets added up.

    A budget is judged as a multiple of `floor_ms`, what a floor workflow cost
    in CPU in the same run: a slower host makes both dearer alike (the
    host-by-host figures of docs/performance.md). Without a floor figure (a
    run that did not measure it), budgets are judged in their own milliseconds.
    A process the run did not measure (Postgres, when the database is not on
    the benchmark's machine) has no row, and is named in the last one.
    """
    if not per_order:
        return []
    measured = [budget for budget in budgets if budget.process in per_order]
    missing = [budget.label for budget in budgets if budget.process not in per_order]
    table = [
        _budget_row(f"CPU per order: {budget.label}", per_order[budget.process], budget, floor_ms)
        for budget in measured
    ]
    in_all = Budget(
        "all",
        "",
        sum(budget.ms for budget in measured),
        "the budgets above added up" + (f"; not measured: {', '.join(missing)}" if missing else ""),
    )
    used = round(sum(per_order[budget.process] for budget in measured), 1)
    table.append(
        _budget_row("CPU per order: the platform's processes in all", used, in_all, floor_ms)
    )
    return [dataclasses.replace(row, section=BUDGET) for row in table]


def _budget_row(figure: str, spent_ms: float, budget: Budget, floor_ms: float | None) -> Row:
    if not floor_ms:
        note = f"{budget.why}; no floor measured: judged in ms"
        met = spent_ms <= budget.ms
        return Row(figure, "ms", spent_ms, target=f"<= {budget.ms:g} ms", met=met, note=note)
    row = _compare(
        figure,
        "ms",
        spent_ms,
        floor_ms,
        "the floor's CPU per workflow",
        f"<= {budget.of_the_floor:.2f}",
    )
    allowed = budget.of_the_floor * floor_ms
    return dataclasses.replace(row, note=f"{budget.why}; here {allowed:.1f} ms")


def changes_rows(changes: Changes) -> list[Row]:
    """Each call's answer during the slow charge, then whether every change won."""
    table: list[Row] = []
    for name, answers, note in (
        (
            "UpdateShippingAddress",
            changes.update,
            f"{changes.updated_while_reserved} while RESERVED",
        ),
        ("CancelOrder", changes.cancel, ""),
        ("full-view GetOrder", changes.full_view, ""),
    ):
        figure, latency = f"changes: {name} during a step", answers.latency
        notes = [_kinds(answers.answers) or "none answered", note]
        table += [
            Row(f"{figure}, p50", "ms", latency.p50_ms),
            Row(
                f"{figure}, p99",
                "ms",
                latency.p99_ms,
                target=f"<= {ANSWER_MS:g} ms",
                met=bool(latency.count) and latency.p99_ms <= ANSWER_MS,
                note="; ".join(n for n in notes if n),
            ),
            Row(f"{figure}, max", "ms", latency.max_ms),
        ]
    lost = _kinds(changes.lost)
    table += [
        Row(
            "changes: answered from the projection (busy)",
            "calls",
            changes.busy,
            note=f"of {changes.full_view.latency.count} full-view GetOrder",
        ),
        Row(
            "changes: orders where the change won",
            "orders",
            changes.won,
            target=f"== {changes.orders}",
            met=changes.won == changes.orders,
            note=f"{changes.changed} readdressed, {changes.cancelled} cancelled"
            + (f"; lost: {lost}" if lost else ""),
        ),
    ]
    return [dataclasses.replace(row, section=CHANGES) for row in table]


def overload_rows(overload: Overload) -> list[Row]:
    """Capacity, then each offered multiple of it, then the flood: each against its target."""
    concurrency = overload.capacity_concurrency
    capacity, create_p99 = overload.capacity_per_second, overload.capacity_create_p99_ms
    table = [
        Row(
            f"capacity: orders/s to SHIPPED, {concurrency} in flight",
            "/s",
            capacity,
            note=(
                f"while {concurrency} were in flight; "
                f"{overload.capacity_whole_run_per_second:,.2f} /s with the run's fill and drain"
            ),
        ),
        Row(f"capacity: CreateOrder p99, {concurrency} in flight", "ms", create_p99),
    ]
    for level in overload.levels:
        name, calls = f"{level.factor:g}x", level.calls
        table.append(
            Row(
                f"{name}: CreateOrder offered, open loop",
                "/s",
                level.sent_per_second,
                note=f"{calls.calls} calls, {overload.customers} customers, {level.seconds:g} s",
            )
        )
        table += _window_rows(name, level.window, level.late_ms)
        goodput = _compare(
            f"{name}: goodput, orders/s to SHIPPED",
            "/s",
            level.goodput,
            capacity,
            "capacity",
            ">= 0.9",
        )
        table.append(
            dataclasses.replace(
                goodput,
                note=f"shipped from {level.goodput_counted_from:g} s to {level.seconds:g} s",
            )
        )
        admitted_p99 = _compare(
            f"{name}: admitted CreateOrder p99",
            "ms",
            calls.admitted_latency.p99_ms,
            create_p99,
            "CreateOrder p99 at capacity",
            "<= 1.5",
        )
        if not calls.admitted:
            admitted_p99 = dataclasses.replace(admitted_p99, met=False, note="none admitted")
        table.append(admitted_p99)
        table.append(Row(f"{name}: CreateOrder admitted", "calls", calls.admitted))
        table += _refusal_rows(name, calls)
        table.append(
            _compare(
                f"{name}: to SHIPPED p99, admitted orders",
                "ms",
                calls.to_shipped.p99_ms,
                overload.capacity_to_shipped_p99_ms,
                "at capacity",
            )
        )
        table.append(_shipped_row(name, calls, f"drained {level.drained_after:g} s after"))
    flood = overload.flood
    flooder, polite = flood.flooder, flood.polite
    name = "flood"
    table.append(
        Row(
            f"{name}: CreateOrder sent by one customer",
            "calls",
            flooder.calls,
            note=f"in {flood.seconds:g} s, open loop",
        )
    )
    table += _window_rows(name, flood.window, flood.late_ms)
    table += _refusal_rows(name, flooder)
    table.append(_shipped_row(name, flooder))
    name = "polite customer"
    unavailable = sum(n for kind, n in polite.answers.items() if kind.startswith("UNAVAILABLE"))
    refusals = _kinds({kind: n for kind, n in polite.answers.items() if kind != "OK"})
    p99 = polite.admitted_latency.p99_ms
    table += [
        Row(
            f"{name}: orders accepted",
            "orders",
            polite.admitted,
            target=f"== {polite.calls}",
            met=polite.admitted == polite.calls,
            note=f"of {polite.calls}, evenly over the flood"
            + (f"; refused: {refusals}" if refusals else ""),
        ),
        Row(
            f"{name}: UNAVAILABLE",
            "calls",
            unavailable,
            target="== 0",
            met=unavailable == 0,
        ),
        Row(
            f"{name}: CreateOrder p99",
            "ms",
            p99,
            target="< 2000 ms",
            met=bool(polite.admitted) and p99 < 2000,
        ),
        _shipped_row(name, polite, target=polite.calls),
    ]
    return [dataclasses.replace(row, section=OVERLOAD) for row in table]


def _window_rows(name: str, window: Window, late_ms: float) -> list[Row]:
    """Who used the cores while the calls were sent, and how late the benchmark itself ran."""
    busiest = ", ".join(
        f"{process} {cores:.2f}" for process, cores in window.cores.items() if process != "all"
    )
    lag = window.client_lag
    return [
        Row(
            f"{name}: CPU cores used while sending",
            "cores",
            window.cores.get("all", 0.0),
            note=busiest,
        ),
        Row(
            f"{name}: most orders in flight at the front door",
            "orders",
            window.in_flight_max,
            note=f"most waiting for a worker {window.waiting_max:,.0f}",
        ),
        Row(
            f"{name}: benchmark's event loop lag p99",
            "ms",
            lag.p99_ms,
            note=f"max {lag.max_ms:,.0f} ms; calls sent up to {late_ms:,.0f} ms late",
        ),
        Row(
            f"{name}: front door's event loop lag p99",
            "ms",
            window.front_door_lag_p99_ms if window.front_door_lag_p99_ms is not None else 0.0,
            note=(
                f"bucket bound; of {window.front_door_wakes:,} wakes "
                f"{window.front_door_late_10ms:,} over 10 ms, "
                f"{window.front_door_late_50ms:,} over 50 ms; garbage collections "
                f"stopped it {window.front_door_gc_ms:,.0f} ms in all, "
                f"{window.front_door_gc_over_10ms:,} times over 10 ms"
            ),
        ),
    ]


def _refusal_rows(name: str, calls: Calls) -> list[Row]:
    """How many calls were refused, how, and how fast."""
    refused, latency = calls.refused, calls.refused_latency
    otherwise = calls.refused_otherwise()
    rules = _kinds(calls.rules)
    kinds = _kinds({kind: n for kind, n in calls.answers.items() if kind != "OK"})
    return [
        Row(
            f"{name}: CreateOrder refused",
            "calls",
            refused,
            note=kinds + (f"; rules: {rules}" if rules else ""),
        ),
        Row(
            f"{name}: refusals not {REFUSAL_CODE}",
            "calls",
            otherwise,
            target="== 0",
            met=otherwise == 0,
        ),
        Row(f"{name}: refusal latency p99", "ms", latency.p99_ms),
        Row(
            f"{name}: refusal latency max",
            "ms",
            latency.max_ms,
            target=f"<= {REFUSAL_MS:g} ms",
            met=latency.max_ms <= REFUSAL_MS,
            note="" if refused else "no refusal",
        ),
    ]


def _shipped_row(name: str, calls: Calls, note: str = "", target: int | None = None) -> Row:
    """Whether every admitted order (or `target` orders) reached SHIPPED."""
    wanted = calls.admitted if target is None else target
    notes = [f"of {calls.admitted} admitted", _kinds(calls.not_shipped), note]
    return Row(
        f"{name}: orders shipped",
        "orders",
        calls.shipped,
        target=f"== {wanted}",
        met=calls.shipped == wanted,
        note="; ".join(n for n in notes if n),
    )


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in counts.items())


def number(value: float) -> str:
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def print_table(table: list[Row], instances: int = 1) -> None:
    """The tables on standard output (one per section), wide enough for one line per figure;
    the first says how many `instances` of each platform process ran, if more than one."""
    console = Console(width=max(Console().width, 132))
    main = "make bench" + (f", {instances} of each platform process" if instances > 1 else "")
    for section in dict.fromkeys(row.section for row in table):
        title = f"make bench: {section}" if section else main
        console.print(_view(title, [row for row in table if row.section == section]))


def _view(title: str, table: list[Row]) -> Table:
    view = Table(title=title, title_justify="left")
    for column in ("figure", "measured", "baseline", "ratio", "target", ""):
        view.add_column(column, justify="left" if column in ("figure", "") else "right")
    for row in table:
        verdict = "" if row.met is None else ("met" if row.met else "MISSED")
        verdict = f"{verdict} ({row.note})" if verdict and row.note else verdict or row.note
        view.add_row(
            row.figure,
            f"{number(row.measured)} {row.unit}",
            f"{number(row.baseline)} {row.unit}" if row.baseline is not None else "",
            f"{row.ratio:.2f}x" if row.ratio is not None else "",
            row.target or "",
            verdict,
        )
    return view


# The columns of the CPU table: cpu_ms's keys, and their headings.
CPU_COLUMNS = {
    "per_order": "per order",
    "per_bare_workflow": "per bare workflow",
    "per_floor_workflow": "per floor workflow",
}


def print_cpu(cpu_ms: dict[str, dict[str, float]], instances: int = 1) -> None:
    """CPU per order and per workflow of each baseline, by process: who used the cores.
    A process's `instances` are one row, added up."""
    if not cpu_ms.get("per_order"):
        return
    columns = {key: cpu_ms.get(key, {}) for key in CPU_COLUMNS}
    title = "CPU ms by process"
    if instances > 1:
        title += f" ({instances} instances of each added up)"
    view = Table(title=title, title_justify="left")
    view.add_column("process", justify="left")
    for heading in CPU_COLUMNS.values():
        view.add_column(heading, justify="right")
    processes = sorted(
        set().union(*columns.values()),
        key=lambda p: (p == "all", *(-shares.get(p, 0.0) for shares in columns.values())),
    )
    for process in processes:
        view.add_row(process, *(f"{shares.get(process, 0.0):,.1f}" for shares in columns.values()))
    busy = cpu_ms.get("cores_busy") or {}
    if busy:
        view.add_section()
        view.add_row(
            f"cores busy (of {busy.get('machine', 0):g})",
            *(f"{busy[key]:.2f}" if key in busy else "" for key in CPU_COLUMNS),
        )
    Console().print(view)


def write_json(results: Results, table: list[Row], path: Path) -> None:
    document = {"rows": [asdict(row) for row in table], **asdict(results)}
    path.write_text(json.dumps(document, indent=2) + "\n")
