"""The circuit breaker's rules, on a clock the tests move by hand."""

from __future__ import annotations

import pytest

from server.core.breaker import PROBE_WAIT_SECONDS, Breaker, Refused, State
from tests.support.clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def changes() -> list[tuple[State, State]]:
    return []


@pytest.fixture
def breaker(clock: Clock, changes: list[tuple[State, State]]) -> Breaker:
    return Breaker(
        threshold=3, cooldown=10.0, clock=clock, on_change=lambda *change: changes.append(change)
    )


def fail(breaker: Breaker, times: int) -> None:
    for _ in range(times):
        breaker.failed(breaker.admit())


def refused_for(breaker: Breaker) -> float:
    with pytest.raises(Refused) as refused:
        breaker.admit()
    return refused.value.retry_after


def test_it_opens_after_threshold_consecutive_failures(
    breaker: Breaker, changes: list[tuple[State, State]]
) -> None:
    fail(breaker, 2)
    assert breaker.state is State.CLOSED
    breaker.admit()  # still lets calls through
    fail(breaker, 1)
    assert breaker.state is State.OPEN
    assert changes == [(State.CLOSED, State.OPEN)]


def test_a_success_resets_the_count(breaker: Breaker) -> None:
    fail(breaker, 2)
    breaker.succeeded(breaker.admit())
    fail(breaker, 2)
    assert breaker.state is State.CLOSED
    assert breaker.failures == 2


def test_while_open_calls_fail_fast_with_the_time_left(breaker: Breaker, clock: Clock) -> None:
    fail(breaker, 3)
    assert refused_for(breaker) == pytest.approx(10.0)
    clock.now += 7.5
    assert refused_for(breaker) == pytest.approx(2.5)
    assert breaker.state is State.OPEN


def test_after_the_cooldown_one_probe_goes_through_and_the_rest_wait(
    breaker: Breaker, clock: Clock, changes: list[tuple[State, State]]
) -> None:
    fail(breaker, 3)
    clock.now += 10.0
    probe = breaker.admit()
    assert probe.probe
    assert breaker.state is State.HALF_OPEN
    # Everyone else is refused while the probe runs, and asked to come back soon.
    assert refused_for(breaker) == PROBE_WAIT_SECONDS
    assert refused_for(breaker) == PROBE_WAIT_SECONDS
    assert changes[-1] == (State.OPEN, State.HALF_OPEN)


def test_a_successful_probe_closes_it(
    breaker: Breaker, clock: Clock, changes: list[tuple[State, State]]
) -> None:
    fail(breaker, 3)
    clock.now += 10.0
    breaker.succeeded(breaker.admit())
    assert breaker.state is State.CLOSED
    assert not breaker.admit().probe
    assert changes == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]
    # Closed afresh: it takes the full threshold to open again.
    fail(breaker, 2)
    assert breaker.state is State.CLOSED


def test_a_failed_probe_opens_it_for_another_cooldown(breaker: Breaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 12.0
    breaker.failed(breaker.admit())
    assert breaker.state is State.OPEN
    assert refused_for(breaker) == pytest.approx(10.0)


def test_a_probe_given_up_lets_the_next_call_probe(breaker: Breaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 10.0
    breaker.abandoned(breaker.admit())
    assert breaker.state is State.HALF_OPEN
    assert breaker.admit().probe


def test_a_call_from_before_the_breaker_opened_changes_nothing(
    breaker: Breaker, clock: Clock
) -> None:
    early = breaker.admit()
    fail(breaker, 3)
    clock.now += 10.0
    probe = breaker.admit()
    # The early call ends while the probe runs: neither its failure nor its
    # success decides; the probe does.
    breaker.failed(early)
    breaker.succeeded(early)
    assert breaker.state is State.HALF_OPEN
    breaker.succeeded(probe)
    assert breaker.state is State.CLOSED


def test_a_short_cooldown_bounds_the_wait_for_a_probe(clock: Clock) -> None:
    breaker = Breaker(threshold=1, cooldown=0.25, clock=clock)
    fail(breaker, 1)
    clock.now += 0.25
    assert breaker.admit().probe
    assert refused_for(breaker) == 0.25


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, 0.0)])
def test_nonsense_settings_are_refused(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError):
        Breaker(threshold=threshold, cooldown=cooldown)
