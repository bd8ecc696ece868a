"""The benchmark's sizes as its command line reads them (bench/options.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.options import parse


def test_the_floor_runs_for_its_own_count_of_workflows() -> None:
    defaults = parse([])
    assert (defaults.workflows, defaults.floor_workflows) == (200, 600)
    chosen = parse(["--workflows", "20", "--floor-workflows", "30"])
    assert (chosen.workflows, chosen.floor_workflows) == (20, 30)


@pytest.mark.parametrize("value", ["0", "-5", "many", "1.5"])
def test_a_floor_count_that_is_not_a_positive_integer_is_refused(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(["--floor-workflows", value])
    assert exited.value.code == 2
    assert "--floor-workflows" in capsys.readouterr().err


def test_a_series_writes_one_file_a_run_beside_the_file_named(tmp_path: Path) -> None:
    out = tmp_path / "host9.json"
    (single,) = parse(["--out", str(out)]).series()
    assert single.out == out and single.workdir == tmp_path / "host9"
    series = parse(["--runs", "3", "--out", str(out), "--orders", "40"]).series()
    assert [run.out.name for run in series] == ["host9-1.json", "host9-2.json", "host9-3.json"]
    assert [run.workdir.name for run in series] == ["host9-1", "host9-2", "host9-3"]
    # Otherwise each run is the run asked for.
    assert {(run.orders, run.runs) for run in series} == {(40, 3)}


@pytest.mark.parametrize("value", ["0", "-1", "five"])
def test_a_series_of_no_runs_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(["--runs", value])
    assert exited.value.code == 2
    assert "--runs" in capsys.readouterr().err
