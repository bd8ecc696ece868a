"""`python -m bench [--help]`: run the benchmark, print its table, write JSON and a PNG.

With `--runs N`, N runs one after the other, then each figure over the series
(bench/summary.py).
"""

from __future__ import annotations

import asyncio
import sys

from bench import chart, report, runner, summary
from bench.options import Options, parse
from bench.progress import Phases


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    series = options.series()
    for run in series:
        once(run)
    if len(series) > 1:
        summary.print_summary([run.out for run in series])
    return 0


def once(options: Options) -> None:
    """One run: its phases, its tables, its JSON file and its chart."""
    with Phases(runner.phase_count(options)) as phases:
        results = asyncio.run(runner.run(options, phases))
    table = report.rows(results)
    report.print_table(table, options.scale)
    report.print_cpu(results.cpu_ms, options.scale)
    report.write_json(results, table, options.out)
    picture = options.out.with_suffix(".png")
    chart.draw(results, table, picture)
    phases.console.print(f"results: {options.out}\nchart:   {picture}")
    if results.profiles:
        phases.console.print(f"profiles: {options.workdir / 'profiles'}")


if __name__ == "__main__":
    sys.exit(main())
