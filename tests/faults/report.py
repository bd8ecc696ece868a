"""The figures, as text: one block per round as it ends, one table at the end."""

from __future__ import annotations

from collections import defaultdict

from tests.faults.calls import Tally
from tests.faults.rounds import RoundResult

# Findings listed in full up to this many per kind; the count is always given.
DETAIL_LINES = 10
METHODS = ("CreateOrder", "CancelOrder", "ListOrders")


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counter.items(), key=lambda kv: -kv[1]))


def _codes(tally: Tally) -> list[str]:
    by_method: dict[str, dict[str, int]] = defaultdict(dict)
    for (method, code, reason), n in tally.counts.items():
        key = code if code == "OK" else f"{code}/{reason}"
        by_method[method][key] = by_method[method].get(key, 0) + n
    ordered = [m for m in METHODS if m in by_method] + sorted(set(by_method) - set(METHODS))
    return [f"{m}: {_counts(by_method[m])}" for m in ordered]


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def round_block(number: int, result: RoundResult) -> str:
    f = result.findings
    r = result.recovery
    rows: list[tuple[str, str]] = [
        ("fault", f"{result.fault.summary} ({result.injection.what})"),
        ("orders placed", str(f.placed)),
        ("shipped", str(f.shipped)),
        ("failed", f"{sum(f.failed.values())}" + (f" ({_counts(f.failed)})" if f.failed else "")),
        ("cancelled", str(f.cancelled)),
        ("refused at the door", _counts(f.refused) or "0"),
        ("lost", str(len(f.lost))),
        ("stuck", str(len(f.stuck))),
        ("double charges", str(len(f.doubled))),
        ("other charge errors", str(len(f.charge_errors))),
        (
            "stock conserved",
            "yes" if not f.stock_errors else f"NO ({len(f.stock_errors)} findings)",
        ),
        ("skus audited", str(f.skus)),
        ("one shipment per shipped", "yes" if not f.shipment_errors else "NO"),
        ("one order per request_id", "yes" if not f.duplicate_requests else "NO"),
        ("unexpected outcomes", str(len(f.unexpected))),
        ("unreadable books", str(len(f.unreadable))),
    ]
    if result.fault.strict_outcomes:
        w = result.waited
        rows += [
            (
                "waited it out",
                f"{w.orders} orders ({w.meant_to_ship} meant to ship); "
                f"{w.shipped_after} shipped once it was over",
            ),
            ("ended otherwise", str(len(f.ended_wrongly))),
        ]
    rows += [
        ("codes callers saw" if i == 0 else "", line) for i, line in enumerate(_codes(result.tally))
    ]
    rows += [
        ("healed after", _seconds(r.healed_after)),
        ("longest stall", _seconds(r.longest_stall)),
        ("recovered after", _seconds(r.recovered_after)),
        ("settled per second", f"{r.settled_per_second:.1f}"),
        ("round took", _seconds(result.seconds)),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"== round {number}: {result.fault.name} =="]
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    for title, found in (
        ("lost", f.lost),
        ("stuck", f.stuck),
        ("double charges", f.doubled),
        ("other charge errors", f.charge_errors),
        ("stock", f.stock_errors),
        ("shipments", f.shipment_errors),
        ("request_ids", f.duplicate_requests),
        ("unexpected outcomes", f.unexpected),
        ("ended otherwise", f.ended_wrongly),
        ("unreadable books", f.unreadable),
    ):
        for line in found[:DETAIL_LINES]:
            lines.append(f"  ! {title}: {line}")
        if len(found) > DETAIL_LINES:
            lines.append(f"  ! {title}: ... {len(found) - DETAIL_LINES} more")
    return "\n".join(lines)


SUMMARY_COLUMNS = (
    "fault",
    "placed",
    "shipped",
    "failed",
    "cancelled",
    "lost",
    "stuck",
    "doubled",
    "stock",
    "caller errors",
    "recovered",
    "verdict",
)


def summary_table(results: list[RoundResult]) -> str:
    rows = [SUMMARY_COLUMNS]
    for result in results:
        f = result.findings
        rows.append(
            (
                result.fault.name,
                str(f.placed),
                str(f.shipped),
                str(sum(f.failed.values())),
                str(f.cancelled),
                str(len(f.lost)),
                str(len(f.stuck)),
                str(len(f.doubled)),
                "ok" if not f.stock_errors else "WRONG",
                str(result.tally.errors("CreateOrder", "CancelOrder")),
                _seconds(result.recovery.recovered_after),
                "ok" if not f.violations else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_COLUMNS))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )
