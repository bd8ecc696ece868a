"""Load drivers: a fixed number of operations, or a fixed time, with N in flight;
or operations started at a fixed rate whatever became of the earlier ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from bench.stats import Latency, Rate, Run, tally

Operation = Callable[[int], Awaitable[None]]
Tick = Callable[[], None]


def failure_kind(error: BaseException) -> str:
    """How a failed operation is counted: its gRPC status, or its exception type."""
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code().name
    return type(error).__name__


@dataclass
class Samples:
    """What a closed-loop run saw, before it is summarised; runs can be added up."""

    attempted: int
    concurrency: int
    seconds: float
    durations: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # When each successful operation ended, and when the last one started
    # (seconds from the run's start); empty and None for runs added up.
    ends: list[float] = field(default_factory=list)
    last_start: float | None = None

    def __add__(self, other: Samples) -> Samples:
        return Samples(
            attempted=self.attempted + other.attempted,
            concurrency=self.concurrency,
            seconds=self.seconds + other.seconds,
            durations=self.durations + other.durations,
            failures=self.failures + other.failures,
        )

    def steady_per_second(self) -> float | None:
        """Completions per second while exactly `concurrency` operations were in flight.

        The whole run's rate also counts its ends: the fill, when the first
        operations start together, and the drain, when no new ones start and
        the last ones run with the machine to themselves. Between the
        concurrency-th completion and the last start, every completion was
        followed by a start: the rate a continuous load gets. None when that
        stretch is too short to time (under a second, or fewer than
        `concurrency` completions in it).
        """
        if self.last_start is None or len(self.ends) < 2 * self.concurrency:
            return None
        ends = sorted(self.ends)
        begin = ends[self.concurrency - 1]
        inside = [end for end in ends if begin < end <= self.last_start]
        if self.last_start - begin < 1.0 or len(inside) < self.concurrency:
            return None
        return round(len(inside) / (self.last_start - begin), 2)

    def run(self) -> Run:
        completed = len(self.durations)
        return Run(
            attempted=self.attempted,
            concurrency=self.concurrency,
            completed=completed,
            seconds=round(self.seconds, 3),
            per_second=round(completed / self.seconds, 2) if self.seconds > 0 else 0.0,
            steady_per_second=self.steady_per_second(),
            latency=Latency.of(self.durations),
            errors=tally(self.failures),
        )


async def closed_loop(total: int, concurrency: int, operation: Operation, tick: Tick) -> Samples:
    """Runs operation(0) ... operation(total - 1), `concurrency` at a time.

    Each of `concurrency` loops starts the next operation as soon as its last
    one ends, so exactly that many are in flight until the queue runs dry. The
    rate is completed operations over the time from the first start to the
    last end.
    """
    indexes = iter(range(total))
    durations: list[float] = []
    failures: list[str] = []
    ends: list[float] = []
    last_start = 0.0

    async def loop() -> None:
        nonlocal last_start
        for index in indexes:
            started = time.perf_counter()
            last_start = started - begun
            try:
                await operation(index)
            except Exception as error:
                failures.append(failure_kind(error))
            else:
                ended = time.perf_counter()
                durations.append(ended - started)
                ends.append(ended - begun)
            tick()

    begun = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(min(concurrency, total))))
    seconds = time.perf_counter() - begun
    return Samples(total, concurrency, seconds, durations, failures, ends, last_start)


async def timed_loop(seconds: float, concurrency: int, operation: Operation, tick: Tick) -> Rate:
    """Calls `operation` from `concurrency` loops until `seconds` have passed."""
    deadline = time.perf_counter() + seconds
    calls = 0
    failures: list[str] = []

    async def loop() -> None:
        nonlocal calls
        while time.perf_counter() < deadline:
            try:
                await operation(calls)
            except Exception as error:
                failures.append(failure_kind(error))
            else:
                calls += 1
            tick()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Rate(
        calls=calls,
        concurrency=concurrency,
        seconds=round(elapsed, 3),
        per_second=round(calls / elapsed, 1) if elapsed > 0 else 0.0,
        errors=tally(failures),
    )


@dataclass(frozen=True)
class Arrivals:
    """What an open-loop run sent: when it began (perf_counter), and how well it kept time."""

    started: float
    count: int
    # From the first start to the last.
    seconds: float
    # The most an operation was started after its moment (the driver falling behind).
    late_ms: float


async def open_loop(count: int, per_second: float, operation: Operation) -> Arrivals:
    """Starts operation(0) ... operation(count - 1), evenly spaced at `per_second`.

    Each starts at its moment whether or not the earlier ones have ended, as
    independent callers would arrive; one whose moment has passed (this loop
    fell behind) starts at once. Returns when every operation has ended; the
    first exception any raised is raised then.
    """
    started = time.perf_counter()
    tasks: list[asyncio.Future[None]] = []
    late = 0.0
    for index in range(count):
        due = started + index / per_second
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        late = max(late, time.perf_counter() - due)
        tasks.append(asyncio.ensure_future(operation(index)))
    seconds = time.perf_counter() - started
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return Arrivals(started, count, round(seconds, 3), round(late * 1000, 1))
