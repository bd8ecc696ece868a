"""What the machine did while load was offered: who used the cores, how late the
benchmark itself ran, and what the front door's admission control counted.

With several front doors (--scale), each one's /metrics is read: the wakes
of their event loops are added up; the admission gauges are not, since each
front door counts the whole platform's orders (from the projection they
share), so the largest of their readings is taken.

A latency timed by the benchmark includes its own event loop's delays, and
every process shares two cores with the others and with whatever else runs on
the machine; these figures say how much of a window's latencies and refusals
is the platform's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bench.cpu import CpuMeter, by_kind
from bench.stats import Latency

# How often the benchmark's own event loop is checked for lag, and the front
# door's admission gauges read.
LAG_PROBE_SECONDS = 0.01
GAUGE_SECONDS = 0.5
GAUGES = ("admission_orders_in_flight", "admission_orders_waiting")
# The front door's own event loop lag (server/core/metrics.py), a histogram.
LOOP_LAG = "event_loop_lag_seconds_bucket"
# Its garbage collections' pauses, a histogram by generation (added up here).
GC_PAUSE = "python_gc_pause_seconds_bucket"
GC_PAUSE_SUM = "python_gc_pause_seconds_sum"


@dataclass(frozen=True)
class Window:
    # CPU cores each process of the run used (CPU seconds over the window's seconds),
    # its instances added up.
    cores: dict[str, float]
    # How late the benchmark's event loop woke from a LAG_PROBE_SECONDS sleep.
    client_lag: Latency
    # The front door's admission gauges, read every GAUGE_SECONDS (with
    # several, the largest reading of any): the most orders in flight
    # (admitted, not yet shipped or ended), and the most waiting for a
    # worker, that it counted.
    in_flight_max: int
    waiting_max: int
    # The front doors' event loops over the window, from their histograms
    # added up: how many of their wakes (every 50 ms) came later than 10 and
    # 50 ms, of how many, and the bucket bound under which 99% came (None: no
    # histogram).
    front_door_wakes: int = 0
    front_door_late_10ms: int = 0
    front_door_late_50ms: int = 0
    front_door_lag_p99_ms: float | None = None
    # Its garbage collections over the window: those that stopped it for more
    # than 10 ms, and the time all of them stopped it for.
    front_door_gc_over_10ms: int = 0
    front_door_gc_ms: float = 0.0


async def watch(cpu: CpuMeter, metrics_urls: Sequence[str], phase: str, seconds: float) -> Window:
    """Watches the machine for `seconds` (CPU counted in `cpu` under `phase`), and the
    front doors at `metrics_urls`."""
    lags: list[float] = []
    gauges: dict[str, list[float]] = {name: [] for name in GAUGES}

    async def sample() -> None:
        while time.perf_counter() < end:
            for name, value in (await asyncio.to_thread(_gauges, metrics_urls)).items():
                gauges[name].append(value)
            await asyncio.sleep(GAUGE_SECONDS)

    before = await asyncio.to_thread(_histograms, metrics_urls)
    # Counted from here: on a busy machine the read above can take most of a short window.
    end = time.perf_counter() + seconds
    with cpu.measuring(phase):
        sampling = asyncio.create_task(sample())
        while (now := time.perf_counter()) < end:
            await asyncio.sleep(LAG_PROBE_SECONDS)
            lags.append(max(0.0, time.perf_counter() - now - LAG_PROBE_SECONDS))
        await sampling
    after = await asyncio.to_thread(_histograms, metrics_urls)
    wakes, pauses = (
        {bound: n - before[name].get(bound, 0.0) for bound, n in after[name].items()}
        for name in (LOOP_LAG, GC_PAUSE)
    )
    gc_ms = 1000 * (after[GC_PAUSE_SUM].get(INF, 0.0) - before[GC_PAUSE_SUM].get(INF, 0.0))
    spent = by_kind(cpu.seconds[phase])
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
        front_door_gc_over_10ms=_later_than(pauses, 0.01),
        front_door_gc_ms=round(gc_ms, 1),
    )


def with_caller(window: Window, cpu_seconds: float, seconds: float) -> Window:
    """The window with the cores of the process that sent its calls (bench/caller.py),
    which ran on the same machine, counted among the others."""
    cores = {name: used for name, used in window.cores.items() if name != "all"}
    cores["caller"] = round(cpu_seconds / seconds, 2)
    cores["all"] = round(window.cores.get("all", 0.0) + cores["caller"], 2)
    return dataclasses.replace(window, cores=dict(sorted(cores.items(), key=lambda kv: -kv[1])))


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


def _scrape(metrics_url: str) -> list[Sample]:
    """Every sample one /metrics endpoint serves ([] if unreadable)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return []
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def _histograms(metrics_urls: Sequence[str]) -> dict[str, dict[float, float]]:
    """The front doors' loop lag and GC pause histograms, each added up over every front
    door and label: cumulative count by bucket bound (the pauses' sum under INF)."""
    counts: dict[str, dict[float, float]] = {
        name: defaultdict(float) for name in (LOOP_LAG, GC_PAUSE, GC_PAUSE_SUM)
    }
    for url in metrics_urls:
        for sample in _scrape(url):
            if sample.name in (LOOP_LAG, GC_PAUSE):
                counts[sample.name][float(sample.labels["le"])] += sample.value
            elif sample.name == GC_PAUSE_SUM:
                counts[sample.name][INF] += sample.value
    return counts


def _gauges(metrics_urls: Sequence[str]) -> dict[str, float]:
    """The front doors' admission gauges, the largest reading of each ({} if none could be
    read). Each front door counts every order of the platform, not only those it admitted:
    added up, they would count each order once per front door."""
    values: dict[str, float] = {}
    for url in metrics_urls:
        for sample in _scrape(url):
            if sample.name in GAUGES:
                values[sample.name] = max(sample.value, values.get(sample.name, sample.value))
    return values
