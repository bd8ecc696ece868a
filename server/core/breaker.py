"""A circuit breaker: when a service keeps failing, stop calling it for a while.

The rules, for the calls of one process to one service:

* closed: calls go through. Each failure (the caller decides what is one:
  server/core/breaker_interceptor.py) adds to a count of consecutive
  failures, each success resets it; at `threshold` the breaker opens.
* open: calls are refused at once (`Refused`, with the time left in the
  cool-down) for `cooldown` seconds.
* half-open: after the cool-down, the next call goes through as a probe and
  every other call is refused while it runs. The probe's success closes the
  breaker; its failure opens it for another cool-down; a probe given up by
  its caller says nothing, and the next call probes instead.

Only calls let through in the current state count: a call that started
before the breaker opened and fails after it did changes nothing.

Written here rather than taken from a library: `purgatory` (3.0.1) and
`aiobreaker` (1.2.0) both let every call through while half-open (the
point of a probe is that one call finds out), and read the wall clock with
no way to give them another (here a clock is injected: tests need no
sleeps, and a clock step of the system's time cannot shorten a cool-down).
`aiobreaker`, unmaintained since 2021, also replaces the error of the call
that trips it and mixes local and UTC times in the time left.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

# While a probe runs, other callers are asked to come back this soon (or
# after the cool-down, if shorter): by then the probe has usually settled it.
PROBE_WAIT_SECONDS = 1.0


class State(enum.IntEnum):
    """The breaker's state; the values are those of the state gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class Refused(Exception):
    """A call the breaker did not let through; retry after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open; retry in {retry_after:.3f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Admitted:
    """A call let through: in which state (its epoch), and whether it is the probe."""

    epoch: int
    probe: bool


# Told (old state, new state) on every change, to log and measure it.
OnChange = Callable[[State, State], None]


class Breaker:
    def __init__(
        self,
        *,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: OnChange | None = None,
    ) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("a breaker needs a threshold of at least 1 and a positive cool-down")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._state = State.CLOSED
        # Bumped on every change of state, so that late outcomes are told apart.
        self._epoch = 0
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> State:
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    def admit(self) -> Admitted:
        """Lets a call through, or raises Refused."""
        if self._state is State.OPEN:
            left = self._opened_at + self.cooldown - self._clock()
            if left > 0:
                raise Refused(left)
            self._move(State.HALF_OPEN)
        if self._state is State.HALF_OPEN:
            if self._probing:
                raise Refused(min(PROBE_WAIT_SECONDS, self.cooldown))
            self._probing = True
            return Admitted(self._epoch, probe=True)
        return Admitted(self._epoch, probe=False)

    def succeeded(self, call: Admitted) -> None:
        """The service answered (an answer that is an error of the caller's counts too)."""
        if call.epoch != self._epoch:
            return
        if call.probe:
            self._probing = False
            self._move(State.CLOSED)
        else:
            self._failures = 0

    def failed(self, call: Admitted) -> None:
        """The service could not be reached, or could not answer in time."""
        if call.epoch != self._epoch:
            return
        if call.probe:
            self._probing = False
            self._open()
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._open()

    def abandoned(self, call: Admitted) -> None:
        """The caller gave up on the call (cancelled it): nothing learnt about the service."""
        if call.epoch == self._epoch and call.probe:
            self._probing = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move(State.OPEN)

    def _move(self, state: State) -> None:
        old, self._state = self._state, state
        self._epoch += 1
        self._failures = 0
        if self._on_change is not None:
            self._on_change(old, state)
