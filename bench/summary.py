"""`python -m bench.summary RUN.json [RUN.json ...]`: each figure over several runs.

On a shared two-core host one run's ratios move by a tenth from run to run
(docs/performance.md, "A third host: the floor's ratio, run to run"), so a
target is judged over a series: for each figure, its lowest, mean and
highest value across the runs (the ratio to the run's own baseline where
the figure has one, else the measured value) and in how many of the runs
its target was met, by each run's own verdict, and whether the mean meets
it (the proposal of docs/performance.md: a target is met when its mean over
five runs is). Rows are matched by their
figure's name, as `bench.compare` matches them; a figure that only some
runs have is summed up over those. The title names the commits measured and
any setting a run was given (`--platform-env`), so that a series that mixes
them says so.
"""

from __future__ import annotations

import argparse
import json
import operator
import statistics
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.report import number


@dataclass
class Figure:
    """One figure across the runs that have it, filled in run by run."""

    name: str
    unit: str
    target: str
    values: list[float]
    verdicts: list[bool]
    # Whether every run set the figure the same target (an overload row's
    # "== 710 orders" depends on the run's own admissions).
    one_target: bool = True

    @property
    def met(self) -> str:
        """Its verdicts, as "k of n"; "" for a figure without a target."""
        if not self.verdicts:
            return ""
        return f"{sum(self.verdicts)} of {len(self.verdicts)}"

    @property
    def mean(self) -> float:
        mean = statistics.fmean(self.values)
        # Judged as shown: a ratio to three places, as each run's own is.
        return round(mean, 3) if self.unit == "x" else mean

    @property
    def met_on_the_mean(self) -> str:
        """The mean against the target: "met", "MISSED", or "" where there is nothing to judge."""
        if not self.verdicts or not self.values or not self.one_target:
            return ""
        verdict = meets(self.mean, self.target)
        if verdict is None:
            return ""
        return "met" if verdict else "MISSED"


_OPERATORS = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}


def meets(value: float, target: str) -> bool | None:
    """Whether `value` meets a target such as ">= 0.6" or "<= 33 ms"; None if it reads as none."""
    sign, _, rest = target.partition(" ")
    check = _OPERATORS.get(sign)
    try:
        bound = float(rest.split()[0])
    except (IndexError, ValueError):
        return None
    return None if check is None else check(value, bound)


def figures(runs: list[dict[str, Any]]) -> list[Figure]:
    """The figures of `runs` (each a run's JSON document), in the order they first appear."""
    found: dict[str, Figure] = {}
    for run in runs:
        for row in run["rows"]:
            name = row["figure"]
            figure = found.get(name)
            if figure is None:
                unit = "x" if row["ratio"] is not None else row["unit"]
                figure = found[name] = Figure(name, unit, row["target"] or "", [], [])
            elif (row["target"] or "") != figure.target:
                figure.one_target = False
            # As the figure's first run gave it: an older run's row without the
            # ratio is not mixed in with the ratios of the others.
            value = row["ratio"] if figure.unit == "x" else row["measured"]
            if value is not None:
                figure.values.append(value)
            if row["met"] is not None:
                figure.verdicts.append(bool(row["met"]))
    return list(found.values())


def _shown(value: float, unit: str) -> str:
    # Ratios to three places: a mean of 0.596 against a target of 0.6 is a miss.
    return f"{value:.3f}x" if unit == "x" else f"{number(value)} {unit}"


def _title(runs: list[dict[str, Any]]) -> str:
    """How many runs, of which commits, and the settings some of them ran with."""
    metas = [run.get("meta") or {} for run in runs]
    commits = sorted({(meta.get("tree_commit") or "?")[:7] for meta in metas})
    title = f"{len(runs)} runs (commit{'s' if len(commits) > 1 else ''} {', '.join(commits)})"
    settings = Counter(
        f"{name}={value}" for meta in metas for name, value in meta.get("platform_env", {}).items()
    )
    if settings:
        title += "; " + ", ".join(f"{s} in {n} of them" for s, n in sorted(settings.items()))
    return title


def _read(path: Path) -> dict[str, Any]:
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: {error}") from None
    if not isinstance(run, dict) or "rows" not in run:
        raise SystemExit(f"{path}: not the JSON file of a benchmark run")
    return run


def print_summary(paths: list[Path]) -> None:
    """Each figure of the runs written to `paths`, over them all."""
    runs = [_read(path) for path in paths]
    table = Table(title=_title(runs), title_justify="left")
    columns = ("figure", "runs", "lowest", "mean", "highest", "target", "met", "on the mean")
    for column in columns:
        table.add_column(column, justify="left" if column == "figure" else "right")
    for figure in figures(runs):
        values = figure.values
        if not values:
            continue
        table.add_row(
            figure.name,
            str(len(values)),
            *(_shown(value, figure.unit) for value in (min(values), figure.mean, max(values))),
            figure.target,
            figure.met,
            figure.met_on_the_mean,
        )
    Console(width=140).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.summary", description=__doc__)
    parser.add_argument("runs", type=Path, nargs="+", help="the JSON files of the runs")
    args = parser.parse_args(argv)
    print_summary(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
