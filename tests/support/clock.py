"""A clock the tests move by hand: call it for the time, add to `now` to let time pass."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
