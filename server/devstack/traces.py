"""`python -m server.devstack.traces ORDER_ID`: an order's traces as trees, with durations.

Reads the spans every process of `make run` appends to .data/traces.jsonl
(OTEL_TRACES_FILE; see server/core/telemetry.py), finds the traces that
mention the order (or a trace id given instead), and prints each as a tree:
when each span started after the trace began, how long it took, which
process it ran in. `--logs` adds the log lines of the order and of those
traces (from LOG_DIR, .data/logs/ under `make run`).

    python -m server.devstack.traces ord_0f3c...          the order's traces
    python -m server.devstack.traces 4bf92f35...          one trace by id
    python -m server.devstack.traces ord_0f3c... --logs   and its log lines
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.devstack.paths import DATA_DIR

DEFAULT_TRACES = DATA_DIR / "traces.jsonl"
DEFAULT_LOGS = DATA_DIR / "logs"
# Attributes that name the order a span is about.
ORDER_ATTRIBUTES = ("order.id", "temporalWorkflowID")


@dataclass
class Span:
    record: dict[str, Any]
    children: list[Span] = field(default_factory=list)

    @property
    def span_id(self) -> str:
        return str(self.record["span_id"])

    @property
    def parent_id(self) -> str | None:
        return self.record.get("parent_span_id")

    @property
    def name(self) -> str:
        return str(self.record["name"])

    @property
    def service(self) -> str:
        return str(self.record.get("service") or "?")

    @property
    def start_ns(self) -> int:
        return int(self.record["start_ns"])

    @property
    def duration_ms(self) -> float:
        return (int(self.record["end_ns"]) - self.start_ns) / 1e6

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self.record.get("attributes") or {})

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Span]]:
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


def load_spans(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every span record in the files; lines that are not JSON are skipped."""
    spans = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            try:
                spans.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return spans


def trace_ids_for(spans: list[dict[str, Any]], key: str) -> list[str]:
    """Traces that mention order `key` (or are trace `key`), the earliest first."""
    first_seen: dict[str, int] = {}
    for span in spans:
        attributes = span.get("attributes") or {}
        if span["trace_id"] == key or any(
            str(attributes.get(name, "")).startswith(key) for name in ORDER_ATTRIBUTES
        ):
            start = int(span["start_ns"])
            first_seen[span["trace_id"]] = min(start, first_seen.get(span["trace_id"], start))
    return sorted(first_seen, key=first_seen.__getitem__)


def build_tree(spans: list[dict[str, Any]], trace_id: str) -> list[Span]:
    """The trace's root spans, each with its children ordered by start time.

    A span whose parent is not in the files (a caller's span, say) is a root.
    """
    nodes = {s["span_id"]: Span(s) for s in spans if s["trace_id"] == trace_id}
    roots: list[Span] = []
    for node in nodes.values():
        parent = nodes.get(node.parent_id or "")
        (parent.children if parent else roots).append(node)
    for node in nodes.values():
        node.children.sort(key=lambda s: s.start_ns)
    return sorted(roots, key=lambda s: s.start_ns)


def _marks(span: Span) -> str:
    marks = []
    attributes = span.attributes
    if span.record.get("status") == "ERROR":
        marks.append(f"ERROR {span.record.get('status_description') or ''}".strip())
    if attributes.get("error.reason"):
        marks.append(str(attributes["error.reason"]))
    code = attributes.get("rpc.grpc.status_code")
    if code not in (None, 0):
        marks.append(f"grpc code {code}")
    statements = attributes.get("sql.statements")
    if statements:
        plural = "" if statements == 1 else "s"
        marks.append(
            f"{statements} SQL statement{plural}, {attributes.get('sql.statements_ms', 0):.1f} ms"
        )
    return f"  [{'; '.join(marks)}]" if marks else ""


def render(roots: list[Span], trace_id: str) -> str:
    """The trace as text: offset from its start, duration, process, indented name."""
    if not roots:
        return f"trace {trace_id}: no spans"
    every = [span for root in roots for _, span in root.walk()]
    begin = min(span.start_ns for span in every)
    end = max(int(span.record["end_ns"]) for span in every)
    services = sorted({span.service for span in every})
    lines = [
        f"trace {trace_id}: {len(every)} spans over {(end - begin) / 1e6:.1f} ms"
        f" ({', '.join(services)})",
        f"  {'start':>10} {'duration':>11}  {'process':<10} span",
    ]
    for root in roots:
        for depth, span in root.walk():
            lines.append(
                f"  {(span.start_ns - begin) / 1e6:>8.1f}ms {span.duration_ms:>9.1f}ms"
                f"  {span.service:<10} {'  ' * depth}{span.name}{_marks(span)}"
            )
    return "\n".join(lines)


def log_lines(folder: Path, order_id: str | None, trace_ids: set[str]) -> list[dict[str, Any]]:
    """JSON log records of the order or of the traces, in time order."""
    found = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("trace_id") in trace_ids or (
                order_id and record.get("order_id") == order_id
            ):
                found.append(record)
    return sorted(found, key=lambda r: str(r.get("timestamp", "")))


def _render_log(record: dict[str, Any]) -> str:
    known = ("timestamp", "level", "service", "message", "trace_id", "span_id", "order_id")
    rest = " ".join(f"{k}={v}" for k, v in record.items() if k not in known)
    return (
        f"  {record.get('timestamp', '')} {record.get('level', ''):<7} "
        f"{record.get('service', ''):<10} {record.get('message', '')} {rest}".rstrip()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.devstack.traces",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("key", metavar="ORDER_ID|TRACE_ID")
    parser.add_argument(
        "--file",
        type=Path,
        action="append",
        help=f"span files to read (default: $OTEL_TRACES_FILE or {DEFAULT_TRACES})",
    )
    parser.add_argument("--logs", action="store_true", help="also print the matching log lines")
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=Path(os.environ.get("LOG_DIR") or DEFAULT_LOGS),
        help=f"where the JSON log files are (default: $LOG_DIR or {DEFAULT_LOGS})",
    )
    args = parser.parse_args(argv)
    files = args.file or [Path(os.environ.get("OTEL_TRACES_FILE") or DEFAULT_TRACES)]
    spans = load_spans(files)
    trace_ids = trace_ids_for(spans, args.key)
    if not trace_ids:
        where = ", ".join(str(f) for f in files)
        print(f"no trace mentions {args.key} in {where}", file=sys.stderr)
        print("(spans reach the file about a second after they end)", file=sys.stderr)
        return 1
    print("\n\n".join(render(build_tree(spans, t), t) for t in trace_ids))
    if args.logs:
        order_id = args.key if args.key.startswith("ord_") else None
        records = log_lines(args.log_dir, order_id, set(trace_ids))
        print(f"\nlog lines ({len(records)}, from {args.log_dir}):")
        print("\n".join(_render_log(r) for r in records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
