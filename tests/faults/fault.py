"""What every fault has: its timing, the record of its injection, and the moments it waits for.

Each injector waits for a moment that makes its fault bite (an order in the
step to interrupt, CreateOrder calls in flight, or simply orders mid-saga),
breaks one part, repairs it, and says what it did. Processes die by SIGKILL
(Postgres by immediate shutdown, its nearest equivalent): nothing gets a
chance to finish cleanly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from clients.proto.orders.v1 import orders_pb2 as pb
from tests.faults.load import Load
from tests.faults.stack import Platform


@dataclass(frozen=True)
class Timing:
    restart_pause: float  # a killed process is started again after this long
    outage: float  # how long a downstream service stays dead
    trigger_timeout: float  # the longest wait for the moment to inject
    long_outage: float = 60.0  # how long a partner stays dead in the long outage round


@dataclass
class Injection:
    injected_at: float  # round clock
    healed_at: float  # round clock: the broken part is back
    what: str
    # The fault met the moment it waits for (an order in the step, calls in
    # flight, orders mid-saga) rather than being injected when the wait ran out.
    on_target: bool


@dataclass
class Context:
    platform: Platform
    load: Load
    timing: Timing


class Fault:
    name = ""
    summary = ""
    # The orders in flight through the whole fault must end as their card,
    # address and cancellation say (a good card ships) once it is over: an
    # order that ends otherwise is a broken promise, not an unexpected outcome.
    strict_outcomes = False

    async def inject(self, ctx: Context) -> Injection:
        raise NotImplementedError


async def until(ctx: Context, condition: Callable[[], bool]) -> bool:
    """Waits for `condition`; False if it did not come in time or the load ended first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.timing.trigger_timeout
    while not condition():
        if ctx.load.done.is_set() or loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def mid_flight(ctx: Context) -> Callable[[], bool]:
    """A quarter of the slots' worth of orders has gone past PENDING."""
    wanted = max(1, ctx.load.in_flight // 4)
    return lambda: ctx.load.tracker.count(lambda o: o.state != pb.ORDER_STATE_PENDING) >= wanted
