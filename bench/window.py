"""What the machine did while load was offered: who used the cores, how late the
benchmark itself ran, and what the front door's admission control counted.

A latency timed by the benchmark includes its own event loop's delays, and
every process shares two cores with the others and with whatever else runs on
the machine; these figures say how much of a window's latencies and refusals
is the platform's.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from bench.cpu import CpuMeter
from bench.stats import Latency

# How often the benchmark's own event loop is checked for lag, and the front
# door's admission gauges read.
LAG_PROBE_SECONDS = 0.01
GAUGE_SECONDS = 0.5
GAUGES = ("admission_orders_in_flight", "admission_orders_waiting")
# The front door's own event loop lag (server/core/metrics.py), a histogram.
LOOP_LAG = "event_loop_lag_seconds_bucket"


@dataclass(frozen=True)
class Window:
    # CPU cores each process of the run used (CPU seconds over the window's seconds).
    cores: dict[str, float]
    # How late the benchmark's event loop woke from a LAG_PROBE_SECONDS sleep.
    client_lag: Latency
    # The front door's admission gauges, read every GAUGE_SECONDS: the most
    # orders in flight (admitted, not yet shipped or ended), and the most
    # waiting for a worker, that it counted.
    in_flight_max: int
    waiting_max: int
    # The front door's event loop over the window, from its histogram: how
    # many of its wakes (every 50 ms) came later than 10 and 50 ms, of how
    # many, and the bucket bound under which 99% came (None: no histogram).
    front_door_wakes: int = 0
    front_door_late_10ms: int = 0
    front_door_late_50ms: int = 0
    front_door_lag_p99_ms: float | None = None


async def watch(cpu: CpuMeter, metrics_url: str, phase: str, seconds: float) -> Window:
    """Watches the machine for `seconds` (CPU counted in `cpu` under `phase`)."""
    lags: list[float] = []
    gauges: dict[str, list[float]] = {name: [] for name in GAUGES}
    end = time.perf_counter() + seconds

    async def sample() -> None:
        while time.perf_counter() < end:
            for name, value in (await asyncio.to_thread(_gauges, metrics_url)).items():
                gauges[name].append(value)
            await asyncio.sleep(GAUGE_SECONDS)

    before = await asyncio.to_thread(_loop_lag, metrics_url)
    with cpu.measuring(phase):
        sampling = asyncio.create_task(sample())
        while (now := time.perf_counter()) < end:
            await asyncio.sleep(LAG_PROBE_SECONDS)
            lags.append(max(0.0, time.perf_counter() - now - LAG_PROBE_SECONDS))
        await sampling
    after = await asyncio.to_thread(_loop_lag, metrics_url)
    wakes = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    spent = cpu.seconds[phase]
    cores = {name: round(used / seconds, 2) for name, used in spent.items()}
    cores["all"] = round(sum(spent.values()) / seconds, 2)
    in_flight, waiting = (int(max(gauges[name], default=0.0)) for name in GAUGES)
    return Window(
        cores=dict(sorted(cores.items(), key=lambda kv: -kv[1])),
        client_lag=Latency.of(lags),
        in_flight_max=in_flight,
        waiting_max=waiting,
        front_door_wakes=int(wakes.get(INF, 0.0)),
        front_door_late_10ms=_later_than(wakes, 0.01),
        front_door_late_50ms=_later_than(wakes, 0.05),
        front_door_lag_p99_ms=_p99_bound_ms(wakes),
    )


INF = float("inf")


def _later_than(wakes: dict[float, float], bound: float) -> int:
    """Wakes of the front door's loop later than `bound` (a bucket bound), cumulative counts."""
    total = wakes.get(INF, 0.0)
    return int(total - wakes.get(bound, total))


def _p99_bound_ms(wakes: dict[float, float]) -> float | None:
    """The smallest bucket bound under which 99% of the wakes came; None without any."""
    total = wakes.get(INF, 0.0)
    if not total:
        return None
    return 1000 * min(bound for bound, n in wakes.items() if n >= 0.99 * total)


def _loop_lag(metrics_url: str) -> dict[float, float]:
    """The front door's event loop lag histogram: cumulative count by bucket bound."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == LOOP_LAG
    }


def _gauges(metrics_url: str) -> dict[str, float]:
    """The front door's admission gauges, read from its /metrics ({} if unreadable)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in GAUGES
    }
