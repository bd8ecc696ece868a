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

    def __add__(self, other: Samples) -> Samples:
        return Samples(
            attempted=self.attempted + other.attempted,
            concurrency=self.concurrency,
            seconds=self.seconds + other.seconds,
            durations=self.durations + other.durations,
            failures=self.failures + other.failures,
        )

    def run(self) -> Run:
        completed = len(self.durations)
        return Run(
            attempted=self.attempted,
            concurrency=self.concurrency,
            completed=completed,
            seconds=round(self.seconds, 3),
            per_second=round(completed / self.seconds, 2) if self.seconds > 0 else 0.0,
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

    async def loop() -> None:
        for index in indexes:
            started = time.perf_counter()
            try:
                await operation(index)
            except Exception as error:
                failures.append(failure_kind(error))
            else:
                durations.append(time.perf_counter() - started)
            tick()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(min(concurrency, total))))
    seconds = time.perf_counter() - started
    return Samples(total, concurrency, seconds, durations, failures)


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
