"""`python -m bench.compare BEFORE.json AFTER.json`: two runs' figures side by side.

Rows are matched by their figure's name, the CPU budget's included; each
run's ratio to its own baseline is shown, since the baselines move with the
machine's load. A figure only one run has (an older run has no floor and no
budget) is shown on its side alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.report import number


def _rows(path: Path) -> dict[str, dict[str, Any]]:
    return {row["figure"]: row for row in json.loads(path.read_text())["rows"]}


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    text = f"{number(row['measured'])} {row['unit']}"
    if row["ratio"] is not None:
        text += f" ({row['ratio']:.2f}x)"
    if row["met"] is not None:
        text += " met" if row["met"] else " MISSED"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    before, after = _rows(args.before), _rows(args.after)
    table = Table(title=f"{args.before.name} -> {args.after.name}", title_justify="left")
    for column in ("figure", "before (ratio)", "after (ratio)", "target"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for figure in [*before, *(f for f in after if f not in before)]:
        old, new = before.get(figure), after.get(figure)
        target = (new or old or {}).get("target") or ""
        table.add_row(figure, _cell(old), _cell(new), target)
    Console(width=132).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
