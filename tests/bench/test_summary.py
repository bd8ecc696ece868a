"""`python -m bench.summary` on made-up runs: each figure's spread and verdicts over a series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import summary

FLOOR = "orders/s to SHIPPED vs the floor, 50 in flight"
WORKER = "CPU per order: worker"


def row(
    figure: str, measured: float, ratio: float | None, target: str | None, met: bool | None
) -> dict[str, Any]:
    return {
        "figure": figure,
        "unit": "ms" if ratio is None else "/s",
        "measured": measured,
        "baseline": None,
        "baseline_is": "",
        "ratio": ratio,
        "target": target,
        "met": met,
        "note": "",
        "section": "",
    }


def run(commit: str, *rows: dict[str, Any], **settings: str) -> dict[str, Any]:
    return {"rows": list(rows), "meta": {"tree_commit": commit, "platform_env": settings}}


def test_each_figure_is_summed_up_over_the_runs_that_have_it() -> None:
    runs = [
        run(
            "a" * 40,
            row(FLOOR, 20.0, 0.62, ">= 0.6", True),
            row(WORKER, 24.0, None, "<= 33 ms", True),
        ),
        run("a" * 40, row(FLOOR, 18.0, 0.57, ">= 0.6", False)),
        run("b" * 40, row(FLOOR, 19.0, 0.61, ">= 0.6", True), row("RSS", 160.0, None, None, None)),
    ]
    found = {figure.name: figure for figure in summary.figures(runs)}
    assert list(found) == [FLOOR, WORKER, "RSS"]
    # A ratio where the row has one, else what was measured.
    assert found[FLOOR].values == [0.62, 0.57, 0.61] and found[FLOOR].unit == "x"
    assert found[FLOOR].met == "2 of 3"
    assert found[WORKER].values == [24.0] and found[WORKER].met == "1 of 1"
    assert found["RSS"].met == ""


def test_a_run_without_a_ratio_does_not_mix_its_measure_into_the_ratios() -> None:
    runs = [
        run("a" * 40, row(FLOOR, 20.0, 0.62, ">= 0.6", True)),
        run("a" * 40, row(FLOOR, 18.0, None, ">= 0.6", None)),
    ]
    (figure,) = summary.figures(runs)
    assert figure.values == [0.62] and figure.met == "1 of 1"


def test_the_table_names_the_commits_and_settings_and_keeps_three_places_of_a_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = []
    for index, (ratio, met) in enumerate([(0.604, True), (0.588, False)]):
        path = tmp_path / f"run{index}.json"
        settings = {"TRACE_WRITES_RATIO": "0"} if index else {}
        path.write_text(
            json.dumps(run("c" * 40, row(FLOOR, 20.0, ratio, ">= 0.6", met), **settings))
        )
        paths.append(str(path))
    assert summary.main(paths) == 0
    out = capsys.readouterr().out
    assert "2 runs (commit ccccccc); TRACE_WRITES_RATIO=0 in 1 of them" in out
    # Lowest, mean and highest: a mean below the target shows as such.
    assert "0.588x" in out and "0.596x" in out and "0.604x" in out
    assert "1 of 2" in out


def test_a_file_that_is_not_a_run_is_named(tmp_path: Path) -> None:
    log = tmp_path / "bench.log"
    log.write_text("[09:17:01] the platform runs from ...")
    listing = tmp_path / "list.json"
    listing.write_text("[]")
    for path in (log, listing, tmp_path / "missing.json"):
        with pytest.raises(SystemExit, match=str(path)):
            summary.main([str(path)])
