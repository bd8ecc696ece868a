"""Summaries of what a load run observed: latency percentiles and rates."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Latency:
    """Latency percentiles, in milliseconds, of `count` successful calls."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = sorted(s * 1000 for s in seconds)
        return cls(
            count=len(ms),
            p50_ms=round(percentile(ms, 50), 2),
            p90_ms=round(percentile(ms, 90), 2),
            p99_ms=round(percentile(ms, 99), 2),
            mean_ms=round(sum(ms) / len(ms), 2) if ms else 0.0,
            max_ms=round(ms[-1], 2) if ms else 0.0,
        )


@dataclass(frozen=True)
class Run:
    """A closed-loop run: `attempted` operations, at most `concurrency` in flight."""

    attempted: int
    concurrency: int
    completed: int
    seconds: float
    per_second: float
    latency: Latency
    # Failed operations by kind (a gRPC status name, an exception's type...).
    errors: dict[str, int] = field(default_factory=dict)
    # The rate while `concurrency` were in flight, its fill and drain left out
    # (None: too short a run to tell; see driver.Samples.steady_per_second).
    steady_per_second: float | None = None


@dataclass(frozen=True)
class Rate:
    """A timed run of calls at a fixed number in flight: calls per second."""

    calls: int
    concurrency: int
    seconds: float
    per_second: float
    errors: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Rate) -> Rate:
        """Two runs of the same calls as one: their calls over their seconds."""
        calls, seconds = self.calls + other.calls, round(self.seconds + other.seconds, 3)
        return Rate(
            calls=calls,
            concurrency=self.concurrency,
            seconds=seconds,
            per_second=round(calls / seconds, 1) if seconds > 0 else 0.0,
            errors=dict(sorted((Counter(self.errors) + Counter(other.errors)).items())),
        )


def tally(kinds: Sequence[str]) -> dict[str, int]:
    return dict(sorted(Counter(kinds).items()))
