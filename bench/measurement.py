"""The benchmark's phases, in order, on a started platform and baseline workers.

The bare baselines and the platform share the Temporal server and the
machine, and are measured one after the other, never at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from grpc_health.v1 import health_pb2

from bench.changes import Changes, ChangesScenario
from bench.cpu import BARE_WORKFLOWS, FLOOR_WORKFLOWS, ORDERS, CpuMeter
from bench.driver import Operation, Samples, closed_loop, timed_loop
from bench.instances import PROCESSES
from bench.options import Options
from bench.orders_load import Burst, CreateCalls, OrderTraffic
from bench.overload import Overload, OverloadScenario
from bench.processes import BENCH_ROOT, Child, bench_env, free_port, wait_serving
from bench.profiling import Profiler
from bench.progress import Phases
from bench.reads_load import KINDS, Sample, read_call, take_sample
from bench.results import Measured
from bench.stack import Platform
from bench.stats import Latency, Rate
from bench.workflow_load import BareWorkflows
from clients.channels import open_channel

# Phases shown by the progress bar, start-up included.
PHASE_COUNT = 17 + 2 * len(KINDS)
# Calls before each timed read, so connections and caches are warm.
READ_WARM_UP_CALLS = 20


class Measurement:
    def __init__(
        self,
        options: Options,
        phases: Phases,
        platform: Platform,
        bare: BareWorkflows,
        profiler: Profiler,
        cpu: CpuMeter,
    ) -> None:
        self._options = options
        self._phases = phases
        self._platform = platform
        self._traffic = OrderTraffic(platform)
        self._bare = bare
        self._profiler = profiler
        self._cpu = cpu
        # The baselines' samples, added up over their two halves.
        self._baseline: dict[str, Samples] = {}

    def _profiled_pids(self, *kinds: str) -> dict[str, int]:
        """The pids of these platform processes, by the name their profiles carry."""
        children = self._platform.children
        return {"front-door" if kind == "orders" else kind: children[kind].pid for kind in kinds}

    async def warm_up(self) -> None:
        with self._phases.phase("warm up: one of each, not measured", 4) as tick:
            await self._traffic.stock_catalog()
            await self._bare.run_order(0)
            tick()
            await self._bare.run_floor(0)
            tick()
            await self._bare.accept(0)
            tick()
            await self._traffic.place_and_ship(0, CreateCalls())
            tick()

    async def _run(
        self, description: str, total: int, concurrency: int, operation: Operation
    ) -> Samples:
        with self._phases.phase(description, total) as tick:
            return await closed_loop(total, concurrency, operation, tick)

    async def baselines(self, half: int) -> None:
        """Half of each baseline's runs (half 0, then half 1).

        One half runs before the platform's orders and one after, so that a
        change in the shared machine's load weighs on both sides of a ratio.
        """
        options, bare = self._options, self._bare
        concurrency = options.concurrency
        runs = (
            ("workflow_one", "bare workflow, one at a time", options.one_at_a_time, 1),
            ("workflow", f"bare workflow, {concurrency} in flight", options.workflows, concurrency),
            ("floor_one", "floor workflow, one at a time", options.one_at_a_time, 1),
            (
                "floor",
                f"floor workflow, {concurrency} in flight",
                options.floor_workflows,
                concurrency,
            ),
            ("accept_one", "bare update-with-start, one at a time", options.one_at_a_time, 1),
            (
                "accept",
                f"bare update-with-start, {concurrency} in flight",
                options.orders,
                concurrency,
            ),
        )
        operations = {"workflow": bare.run_order, "floor": bare.run_floor, "accept": bare.accept}
        # CPU is counted for each baseline's workflows at the concurrency, to set against orders.
        metered = {"workflow": BARE_WORKFLOWS, "floor": FLOOR_WORKFLOWS}
        for key, description, total, in_flight in runs:
            count = (total + 1) // 2 if half == 0 else total // 2
            operation = operations[key.removesuffix("_one")]
            phase = metered.get(key)
            with self._cpu.measuring(phase) if phase else contextlib.nullcontext():
                samples = await self._run(
                    f"{description} ({half + 1}/2)", count, in_flight, operation
                )
            earlier = self._baseline.get(key)
            self._baseline[key] = samples if earlier is None else earlier + samples

    def baseline_results(self) -> tuple[Measured, Measured, Measured]:
        """The bare workflow's, the floor's and the bare update-with-start's figures,
        both halves."""
        runs = {key: samples.run() for key, samples in self._baseline.items()}
        return (
            Measured(runs["workflow"], runs["workflow_one"].latency),
            Measured(runs["floor"], runs["floor_one"].latency),
            Measured(runs["accept"], runs["accept_one"].latency),
        )

    async def full_stack(self) -> tuple[Measured, Measured]:
        """Orders to SHIPPED, and the CreateOrder calls that placed them.

        CreateOrder is timed inside the orders' run: with `concurrency` orders in
        flight, each loop placing its next order once its last one has shipped.
        (CreateOrder calls sent back to back instead would pile up orders faster
        than any worker ships them, and time the backlog rather than the call.)
        """
        one_calls = CreateCalls()
        one = await self._run(
            "orders to SHIPPED, one at a time",
            self._options.one_at_a_time,
            1,
            lambda index: self._traffic.place_and_ship(index, one_calls),
        )
        calls = CreateCalls()
        with (
            # Every process an order passes through.
            self._profiler.recording("to-shipped", self._profiled_pids(*PROCESSES)),
            self._cpu.measuring(ORDERS),
        ):
            samples = await self._run(
                f"orders to SHIPPED, {self._options.concurrency} in flight",
                self._options.orders,
                self._options.concurrency,
                lambda index: self._traffic.place_and_ship(index, calls),
            )
        # Every CreateOrder answer over the orders' run: accepted ones timed, refused counted.
        create = Samples(
            attempted=len(calls.seconds) + len(calls.refused),
            concurrency=samples.concurrency,
            seconds=samples.seconds,
            durations=calls.seconds,
            failures=calls.refused,
        )
        return (
            Measured(samples.run(), one.run().latency),
            Measured(create.run(), Latency.of(one_calls.seconds)),
        )

    async def burst(self) -> Burst:
        calls = self._options.burst
        with self._phases.phase(f"burst: {calls} CreateOrder at once, then ship", calls) as tick:
            return await self._traffic.burst(calls, self._options.concurrency, tick)

    async def changes(self) -> Changes | None:
        """Address changes and cancellations during a slow charge, unless --changes 0."""
        options = self._options.changes
        if not options.orders:
            return None
        scenario = ChangesScenario(options, self._phases, self._platform, self._traffic)
        return await scenario.run()

    async def overload(self, full_stack: Measured, create_order: Measured) -> Overload:
        """Open-loop load at multiples of the capacity the orders' run measured, then a flood."""
        scenario = OverloadScenario(
            self._options.overload,
            self._phases,
            self._platform,
            self._traffic,
            self._cpu,
            # Who admits and refuses, and who works off the backlog: two profilers
            # rather than five, so that the windows stay near what they measure.
            profile=lambda phase: self._profiler.recording(
                phase, self._profiled_pids("orders", "worker")
            ),
        )
        closed = full_stack.concurrent
        return await scenario.run(
            capacity=closed.steady_per_second or closed.per_second,
            whole_run=closed.per_second,
            concurrency=closed.concurrency,
            create_p99_ms=create_order.concurrent.latency.p99_ms,
            to_shipped_p99_ms=full_stack.concurrent.latency.p99_ms,
        )

    async def reads(self, workdir: Path) -> tuple[dict[str, Rate], dict[str, int]]:
        """Each read against the front door and the bare server, in halves: A B B A.

        The front door's first half comes right after the orders' phases,
        while the machine may still be settling (the last orders' timers,
        spans and WAL being written); its second half comes after the bare
        server's. So a drift of the machine's load weighs on both sides of the
        ratio, as the workflow baselines' halves do.
        """
        shipped = self._traffic.shipped
        sample = await take_sample(self._platform.orders, shipped, self._traffic.customers[0])
        front_door = self._platform.target("orders")
        rates: dict[str, Rate] = {}
        async with _bare_server(sample, workdir) as bare_target:
            for kind in KINDS:
                phase = kind.replace("_", "-")
                with self._profiler.recording(phase, self._profiled_pids("orders")):
                    first = await self._read(kind, front_door, sample, half=0)
                bare = await self._read(kind, bare_target, sample, half=0, bare=True)
                bare += await self._read(kind, bare_target, sample, half=1, bare=True)
                rates[kind] = first + await self._read(kind, front_door, sample, half=1)
                rates[f"bare_{kind}"] = bare
        sizes = {
            "get_order": sample.get_response.ByteSize(),
            "list_orders": sample.list_response.ByteSize(),
            "health": health_pb2.HealthCheckResponse(
                status=health_pb2.HealthCheckResponse.SERVING
            ).ByteSize(),
        }
        return rates, sizes

    async def _read(
        self, kind: str, target: str, sample: Sample, *, half: int, bare: bool = False
    ) -> Rate:
        who = "bare server" if bare else "front door"
        concurrency = self._options.read_concurrency
        # Both sides get the operator's token, so that the calls on the wire are
        # the same size; the bare server ignores it.
        async with open_channel(target, self._platform.caller(), traced=False) as channel:
            call = read_call(kind, channel, sample)
            await asyncio.gather(*(call(i) for i in range(READ_WARM_UP_CALLS)))
            description = f"{kind} on the {who}, {concurrency} in flight ({half + 1}/2)"
            with self._phases.phase(description) as tick:
                rate = await timed_loop(self._options.read_seconds / 2, concurrency, call, tick)
            # Each half's rate in the log: a drift of the machine's load shows there.
            self._phases.log(f"{description}: {rate.per_second:,.0f} calls/s")
            return rate


@contextlib.asynccontextmanager
async def _bare_server(sample: Sample, workdir: Path) -> AsyncIterator[str]:
    """The bare read server (bench/bare_server.py), answering the sample's messages."""
    get_file, list_file = workdir / "get_order.bin", workdir / "list_orders.bin"
    get_file.write_bytes(sample.get_response.SerializeToString())
    list_file.write_bytes(sample.list_response.SerializeToString())
    port = free_port()
    command = [sys.executable, "-m", "bench.bare_server", str(port), str(get_file), str(list_file)]
    child = Child("bare_server", command, BENCH_ROOT, bench_env(), workdir / "bare_server.log")
    child.start()
    try:
        target = f"127.0.0.1:{port}"
        await wait_serving(target, child)
        yield target
    finally:
        child.stop()
