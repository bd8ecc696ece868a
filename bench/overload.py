"""The overload scenario: what the platform does with more orders than it can ship.

Capacity is what the run's closed loop measured: orders/s to SHIPPED while the
benchmark's concurrency was in flight (bench/driver.py, `steady_per_second`),
and CreateOrder's p99 there. Then, for each multiple of that rate, CreateOrder
calls arrive at it for a fixed time, open loop (each at its moment, whatever
became of the earlier ones), spread over many customers, each call made once,
from a process that does nothing else (bench/caller.py), so a refusal is timed
as its caller sees it and not as a loop busy following orders would. Every
admitted order is followed to SHIPPED, and the next rate starts once all of
them have shipped. Last, one customer floods the front door while another
places orders at a polite pace.

Goodput is counted over the window after its first fifth, the time it takes
the platform to fill up (the first orders of a window ship a latency after it
opens); docs/performance.md says how to read the figures.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import grpc

from bench import caller
from bench.caller import Answered
from bench.cpu import CpuMeter
from bench.customers import Answer, Customers
from bench.driver import Tick, failure_kind
from bench.options import OverloadOptions
from bench.orders_load import OrderNotShipped, OrderTraffic
from bench.progress import Phases
from bench.stack import Platform
from bench.stats import Latency, tally
from bench.window import Window, watch, with_caller
from clients.proto.orders.v1 import orders_pb2 as pb

# Share of each window before goodput is counted.
GOODPUT_SKIP = 0.2
# What admission control answers a refusal with, and how fast it should.
REFUSAL_CODE = "RESOURCE_EXHAUSTED"
REFUSAL_MS = 50.0


@dataclass
class _Arrival:
    """One CreateOrder of the scenario and what became of its order (perf_counter times)."""

    sent_at: float
    answer: Answer | None = None
    shipped_at: float | None = None
    failure: str = ""


@dataclass(frozen=True)
class Calls:
    """A set of CreateOrder calls, each made once, and their orders followed to SHIPPED."""

    calls: int
    admitted: int
    # Every answer: OK, or CODE/REASON.
    answers: dict[str, int]
    # Refusals by the admission rule that made them.
    rules: dict[str, int]
    admitted_latency: Latency
    refused_latency: Latency
    # Admitted orders that reached SHIPPED, and what became of the others.
    shipped: int
    not_shipped: dict[str, int]
    # From CreateOrder sent to SHIPPED seen, of the orders that shipped.
    to_shipped: Latency

    @property
    def refused(self) -> int:
        return self.calls - self.admitted

    def refused_otherwise(self) -> int:
        """Refusals with another code than admission control's."""
        return sum(
            n for kind, n in self.answers.items() if kind.split("/")[0] not in ("OK", REFUSAL_CODE)
        )

    @classmethod
    def of(cls, arrivals: list[_Arrival]) -> Calls:
        answers = [a.answer for a in arrivals if a.answer is not None]
        admitted = [a for a in arrivals if a.answer is not None and a.answer.code == "OK"]
        refused = [answer for answer in answers if answer.code != "OK"]
        shipped = [a for a in admitted if a.shipped_at is not None]
        return cls(
            calls=len(arrivals),
            admitted=len(admitted),
            answers=tally([answer.kind for answer in answers]),
            rules=tally([answer.rule for answer in refused if answer.rule]),
            admitted_latency=Latency.of([a.answer.seconds for a in admitted if a.answer]),
            refused_latency=Latency.of([answer.seconds for answer in refused]),
            shipped=len(shipped),
            not_shipped=tally([a.failure for a in admitted if a.shipped_at is None]),
            to_shipped=Latency.of([(a.shipped_at or 0.0) - a.sent_at for a in shipped]),
        )


@dataclass(frozen=True)
class Level:
    """CreateOrder offered at `factor` times capacity for `seconds`."""

    factor: float
    # The rate asked for, and the rate the calls were really sent at.
    offered_per_second: float
    sent_per_second: float
    seconds: float
    # The most a call was sent after its moment (the load generator falling behind).
    late_ms: float
    window: Window
    calls: Calls
    # Orders/s that reached SHIPPED in the window, after its first GOODPUT_SKIP.
    goodput: float
    goodput_counted_from: float
    # Orders that reached SHIPPED in the whole window.
    shipped_in_window: int
    # From the window's end until the last admitted order had shipped.
    drained_after: float
    # Orders that reached SHIPPED in each second from the window's start on.
    shipped_each_second: list[int]


@dataclass(frozen=True)
class Flood:
    """One customer flooding CreateOrder while another orders politely, at the same time."""

    seconds: float
    late_ms: float
    window: Window
    flooder: Calls
    polite: Calls


@dataclass(frozen=True)
class Overload:
    # The closed loop's figures at the benchmark's concurrency: its rate
    # while that many were in flight (its fill and drain left out, as goodput
    # leaves out the windows' fill), and over its whole run.
    capacity_per_second: float
    capacity_whole_run_per_second: float
    capacity_concurrency: int
    capacity_create_p99_ms: float
    capacity_to_shipped_p99_ms: float
    customers: int
    levels: list[Level]
    flood: Flood


def phase_count(options: OverloadOptions) -> int:
    return len(options.factors) + 1 if options.enabled else 0


class OverloadScenario:
    def __init__(
        self,
        options: OverloadOptions,
        phases: Phases,
        platform: Platform,
        traffic: OrderTraffic,
        cpu: CpuMeter,
        profile: Callable[[str], AbstractContextManager[None]],
    ) -> None:
        """`profile(phase)` records the platform's processes while a window runs (--profile)."""
        self._options = options
        self._phases = phases
        self._traffic = traffic
        self._cpu = cpu
        self._profile = profile
        run = uuid.uuid4().hex[:8]
        self._many = [f"bench-{run}-shopper-{i}" for i in range(options.customers)]
        self._flooder = f"bench-{run}-flooder"
        self._polite = f"bench-{run}-polite"
        self._customers = Customers.of(platform, [*self._many, self._flooder, self._polite])
        self._metrics_urls = platform.metrics_urls("orders")
        self._orders = 0

    async def run(
        self,
        capacity: float,
        whole_run: float,
        concurrency: int,
        create_p99_ms: float,
        to_shipped_p99_ms: float,
    ) -> Overload:
        try:
            levels = [await self._level(factor, capacity) for factor in self._options.factors]
            flood = await self._flood()
        finally:
            await self._customers.close()
        return Overload(
            capacity_per_second=capacity,
            capacity_whole_run_per_second=whole_run,
            capacity_concurrency=concurrency,
            capacity_create_p99_ms=create_p99_ms,
            capacity_to_shipped_p99_ms=to_shipped_p99_ms,
            customers=len(self._many),
            levels=levels,
            flood=flood,
        )

    async def _level(self, factor: float, capacity: float) -> Level:
        rate = factor * capacity
        seconds = self._options.seconds
        count = max(1, round(rate * seconds))
        many = self._many
        description = f"{factor:g}x capacity: {rate:.1f} CreateOrder/s for {seconds:g} s, then ship"
        with self._phases.phase(description, count) as tick, self._profile(f"overload-{factor:g}x"):
            watching = asyncio.create_task(self._watch(f"overload {factor:g}x", seconds))
            (arrivals,), caller_sent = await self._send(
                [(rate, [many[index % len(many)] for index in range(count)])], tick
            )
            window = with_caller(await watching, caller_sent.cpu_seconds, seconds)
        (sent,) = caller_sent.streams
        window_end = sent.started + seconds
        counted_from = sent.started + GOODPUT_SKIP * seconds
        shipped_times = [a.shipped_at for a in arrivals if a.shipped_at is not None]
        counted = sum(1 for t in shipped_times if counted_from <= t <= window_end)
        return Level(
            factor=factor,
            offered_per_second=round(rate, 2),
            sent_per_second=round(count / seconds, 2),
            seconds=seconds,
            late_ms=sent.late_ms,
            window=window,
            calls=Calls.of(arrivals),
            goodput=round(counted / (window_end - counted_from), 2),
            goodput_counted_from=round(counted_from - sent.started, 2),
            shipped_in_window=sum(1 for t in shipped_times if t <= window_end),
            drained_after=round(max([window_end, *shipped_times]) - window_end, 2),
            shipped_each_second=_each_second([t - sent.started for t in shipped_times]),
        )

    async def _flood(self) -> Flood:
        options = self._options
        seconds = options.flood_seconds
        total = options.flood_calls + options.polite_orders
        description = (
            f"flood: {options.flood_calls} CreateOrder in {seconds:g} s, "
            f"{options.polite_orders} polite, then ship"
        )
        with self._phases.phase(description, total) as tick, self._profile("flood"):
            watching = asyncio.create_task(self._watch("flood", seconds))
            (flooding, polite), caller_sent = await self._send(
                [
                    (options.flood_calls / seconds, [self._flooder] * options.flood_calls),
                    (options.polite_orders / seconds, [self._polite] * options.polite_orders),
                ],
                tick,
            )
            window = with_caller(await watching, caller_sent.cpu_seconds, seconds)
        sent = caller_sent.streams
        return Flood(
            seconds=seconds,
            late_ms=max(s.late_ms for s in sent),
            window=window,
            flooder=Calls.of(flooding),
            polite=Calls.of(polite),
        )

    async def _watch(self, phase: str, seconds: float) -> Window:
        return await watch(self._cpu, self._metrics_urls, phase, seconds)

    async def _send(
        self, streams: list[tuple[float, list[str]]], tick: Tick
    ) -> tuple[list[list[_Arrival]], caller.Sent]:
        """Sends each stream's CreateOrders (one per customer named, at its rate) at once.

        The calls go out from a process of their own (bench/caller.py); each
        admitted order is followed here to SHIPPED. Returns every call's
        arrival once all the admitted orders have shipped or failed to.
        """
        requests = []
        for _, customers in streams:
            requests.append([self._request(customer) for customer in customers])
        arrivals: list[list[_Arrival]] = [[] for _ in streams]
        following: list[asyncio.Task[None]] = []

        def answered(call: Answered) -> None:
            customer = requests[call.stream][call.index].customer_id
            arrival = _Arrival(sent_at=call.sent_at, answer=call.answer)
            arrivals[call.stream].append(arrival)
            tick()
            if call.answer.code == "OK":
                following.append(asyncio.create_task(self._follow(customer, arrival)))

        sent = await caller.send(
            self._customers.target,
            {c: self._customers.metadata(c) for _, customers in streams for c in set(customers)},
            [
                caller.Stream(rate, calls)
                for (rate, _), calls in zip(streams, requests, strict=True)
            ],
            answered,
        )
        await asyncio.gather(*following)
        return arrivals, sent

    def _request(self, customer_id: str) -> pb.CreateOrderRequest:
        self._orders += 1
        return self._traffic.request(self._orders, customer_id)

    async def _follow(self, customer_id: str, arrival: _Arrival) -> None:
        """Follows an admitted order to SHIPPED; notes when it got there, or what became of it."""
        assert arrival.answer is not None
        try:
            arrival.shipped_at = await self._customers.until_shipped(
                customer_id, arrival.answer.order_id
            )
        except (OrderNotShipped, grpc.aio.AioRpcError) as error:
            arrival.failure = failure_kind(error)


def _each_second(offsets: list[float]) -> list[int]:
    """How many of `offsets` (seconds) fall in each second from 0 to the last."""
    counts = [0] * (int(max(offsets, default=-1.0)) + 1)
    for offset in offsets:
        counts[int(offset)] += 1
    return counts
