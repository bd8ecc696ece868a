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
    # Judged on the mean as well: 0.596 is not 0.6.
    assert out.count("MISSED") == 1


def test_a_figure_is_judged_on_its_mean_against_the_target_every_run_set_it() -> None:
    runs = [
        run(
            "a" * 40,
            row(FLOOR, 20.0, 0.62, ">= 0.6", True),
            row(WORKER, 30.0, None, "<= 33 ms", True),
            row("shipped", 710.0, None, "== 710", True),
            row("GetOrder", 4000.0, 0.80, ">= 0.85", False),
        ),
        run(
            "a" * 40,
            row(FLOOR, 18.0, 0.58, ">= 0.6", False),
            row(WORKER, 38.0, None, "<= 33 ms", False),
            row("shipped", 654.0, None, "== 654", True),
            row("GetOrder", 4500.0, 0.8995, ">= 0.85", True),
        ),
    ]
    found = {figure.name: figure for figure in summary.figures(runs)}
    # Met in one run of two, and on the mean (0.600).
    assert found[FLOOR].met == "1 of 2" and found[FLOOR].met_on_the_mean == "met"
    # Met in one run of two, and not on the mean (34 ms).
    assert found[WORKER].met == "1 of 2" and found[WORKER].met_on_the_mean == "MISSED"
    # A target that depends on the run (orders admitted) is not judged on a mean.
    assert found["shipped"].met == "2 of 2" and found["shipped"].met_on_the_mean == ""
    # A ratio's mean is judged at the three places shown: 0.84975 is 0.850.
    assert found["GetOrder"].met_on_the_mean == "met"


@pytest.mark.parametrize(
    ("value", "target", "verdict"),
    [
        (0.6, ">= 0.6", True),
        (0.599, ">= 0.6", False),
        (1.0, "<= 1.0", True),
        (33.1, "<= 33 ms", False),
        (0, "== 0", True),
        (1999.0, "< 2000 ms", True),
        (1.0, "about 1", None),
        (1.0, ">=", None),
        (1.0, "", None),
    ],
)
def test_a_target_is_read_as_an_operator_and_a_bound(
    value: float, target: str, verdict: bool | None
) -> None:
    assert summary.meets(value, target) is verdict


def test_a_file_that_is_not_a_run_is_named(tmp_path: Path) -> None:
    log = tmp_path / "bench.log"
    log.write_text("[09:17:01] the platform runs from ...")
    listing = tmp_path / "list.json"
    listing.write_text("[]")
    for path in (log, listing, tmp_path / "missing.json"):
        with pytest.raises(SystemExit, match=str(path)):
            summary.main([str(path)])
