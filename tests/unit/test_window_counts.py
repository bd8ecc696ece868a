"""The admission's sliding windows: the library's answers, without a thread per count."""

from __future__ import annotations

import random
import threading
import time

import limits.storage.memory
import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from server.orders.window_counts import WindowCounts
from tests.support.clock import Clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The time both storages and the library's strategy read."""
    clock = Clock(1_765_000_000.25)
    monkeypatch.setattr(time, "time", clock)
    return clock


def test_it_answers_as_the_librarys_memory_storage(clock: Clock) -> None:
    ours = SlidingWindowCounterRateLimiter(WindowCounts())
    theirs = SlidingWindowCounterRateLimiter(MemoryStorage())
    rates = [parse("5 per 2 seconds"), parse("3/second"), parse("20 per 10 seconds")]
    chance = random.Random(20)
    for step in range(3000):
        clock.now += chance.choice((0.0, 0.01, 0.1, 0.4, 0.9, 2.5, 7.0))
        rate = chance.choice(rates)
        key = chance.choice(("c1", "c2", "c3"))
        if chance.random() < 0.3:
            assert ours.test(rate, key) == theirs.test(rate, key), step
        else:
            assert ours.hit(rate, key) == theirs.hit(rate, key), step
        ours_stats = ours.get_window_stats(rate, key)
        theirs_stats = theirs.get_window_stats(rate, key)
        assert ours_stats.remaining == theirs_stats.remaining, step
        assert ours_stats.reset_time == pytest.approx(theirs_stats.reset_time), step


def test_counting_starts_no_thread(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    window = SlidingWindowCounterRateLimiter(WindowCounts())
    timers: list[object] = []

    class CountedTimer(threading.Timer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            timers.append(self)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(limits.storage.memory.threading, "Timer", CountedTimer)
    rate = parse("10 per 2 seconds")
    for index in range(50):
        clock.now += 0.05  # orders far enough apart for the library's timer to have ended
        assert window.hit(rate, "customer", f"c{index % 7}")
    assert timers == []
    # The library's own storage starts one for a count that finds none running.
    MemoryStorage().incr("k", 2)
    assert timers


def test_keys_whose_windows_are_over_are_dropped(clock: Clock) -> None:
    counts = WindowCounts()
    window = SlidingWindowCounterRateLimiter(counts)
    rate = parse("10 per 2 seconds")
    for index in range(3000):
        window.hit(rate, "customer", f"old-{index}")
    assert counts.keys_held == 3000
    clock.now += 4.0  # two windows on: the old keys weigh on nothing any more
    for index in range(3000):
        window.hit(rate, "customer", f"new-{index}")
    assert counts.keys_held < 5000
    # What is still counted is kept: a customer at its limit stays there.
    for _ in range(10):
        assert window.hit(rate, "customer", "busy")
    assert not window.hit(rate, "customer", "busy")
    for index in range(3000):
        window.hit(rate, "customer", f"newer-{index}")
    assert not window.test(rate, "customer", "busy")
