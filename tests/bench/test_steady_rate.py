"""The closed loop's steady rate: its fill and drain left out (bench/driver.py)."""

from __future__ import annotations

import asyncio

import pytest

from bench.driver import Samples, closed_loop


def samples(ends: list[float], last_start: float, concurrency: int = 2) -> Samples:
    return Samples(
        attempted=len(ends),
        concurrency=concurrency,
        seconds=max(ends),
        durations=[1.0] * len(ends),
        ends=ends,
        last_start=last_start,
    )


def test_the_drain_does_not_count() -> None:
    # Two in flight: one completion a second until the last start at 10 s,
    # then the last two end at once, with the machine to themselves.
    ends = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 10.1, 10.2]
    run = samples(ends, last_start=10.0)
    assert run.steady_per_second() == 1.0  # 8 completions from 2 s to 10 s
    assert run.run().per_second == pytest.approx(12 / 10.2, abs=0.01)


def test_too_short_a_stretch_has_no_steady_rate() -> None:
    assert samples([1.0, 1.1, 1.2, 1.3], last_start=1.2).steady_per_second() is None
    assert samples([1.0, 2.0], last_start=1.0).steady_per_second() is None


def test_runs_added_up_have_none() -> None:
    ends = [float(n) for n in range(1, 13)]
    added = samples(ends, 10.0) + samples(ends, 10.0)
    assert added.steady_per_second() is None


def test_a_closed_loop_records_what_the_steady_rate_needs() -> None:
    async def operation(index: int) -> None:
        await asyncio.sleep(0.02)

    run = asyncio.run(closed_loop(320, 4, operation, lambda: None))
    assert len(run.ends) == 320
    assert run.last_start is not None and 0 < run.last_start <= max(run.ends)
    steady = run.steady_per_second()
    # Four in flight, each 20 ms or a little more (1.6 s in all): at most 200 a second.
    assert steady is not None and 0 < steady <= 200
