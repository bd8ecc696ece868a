"""Outages of whole processes: a downstream service, the front door, Temporal, Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.faults.fault import Context, Fault, Injection, Timing, mid_flight, until


class ProcessOutage(Fault):
    """A service process SIGKILLed mid-flight, started again after `downtime`."""

    def __init__(
        self, name: str, process: str, summary: str, *, downtime: Callable[[Timing], float]
    ) -> None:
        self.name = name
        self._process = process
        self.summary = summary
        self._downtime = downtime

    def _trigger(self, ctx: Context) -> Callable[[], bool]:
        return mid_flight(ctx)

    async def inject(self, ctx: Context) -> Injection:
        triggered = await until(ctx, self._trigger(ctx))
        process = ctx.platform.stack.process(self._process)
        injected_at = ctx.load.now()
        calls_in_flight = ctx.load.creates_in_flight
        process.kill()
        await asyncio.sleep(self._downtime(ctx.timing))
        process.start()
        await ctx.platform.stack.wait_serving(self._process)
        healed_at = ctx.load.now()
        what = (
            f"down {healed_at - injected_at:.1f} s; {calls_in_flight} CreateOrder calls in flight"
        )
        if not triggered:
            what += "; the moment to inject did not come, injected anyway"
        return Injection(injected_at, healed_at, what, on_target=triggered)


class PartnerOutage(ProcessOutage):
    """A partner SIGKILLed mid-flight and kept down for the long outage (60 s), under load.

    The orders it catches wait for it (the worker retries their step) and
    must end as they would have without it once it is back: the round's
    promise is stricter than the audit's (Fault.strict_outcomes).
    """

    strict_outcomes = True

    def __init__(self, process: str) -> None:
        super().__init__(
            f"{process}-long",
            process,
            f"{process} service SIGKILL, down for the long outage with orders waiting on it",
            downtime=lambda timing: timing.long_outage,
        )


class FrontDoorKill(ProcessOutage):
    """The orders service SIGKILLed while CreateOrder calls wait on it."""

    def __init__(self) -> None:
        super().__init__(
            "orders",
            "orders",
            "front door SIGKILL with calls in flight",
            downtime=lambda timing: timing.restart_pause,
        )

    def _trigger(self, ctx: Context) -> Callable[[], bool]:
        half = max(1, ctx.load.in_flight // 2)
        return lambda: ctx.load.accepted >= half and ctx.load.creates_in_flight > 0


class ServerCrash(Fault):
    """Temporal or Postgres crashed mid-flight and started again on its data."""

    def __init__(self, name: str, summary: str) -> None:
        self.name = name
        self.summary = summary

    async def inject(self, ctx: Context) -> Injection:
        triggered = await until(ctx, mid_flight(ctx))
        server = ctx.platform.temporal if self.name == "temporal" else ctx.platform.postgres
        injected_at = ctx.load.now()
        server.crash()
        await asyncio.sleep(ctx.timing.restart_pause)
        failed_starts = await server.restart()
        healed_at = ctx.load.now()
        what = "; ".join([f"down {healed_at - injected_at:.1f} s", *failed_starts])
        if not triggered:
            what += "; the moment to inject did not come, injected anyway"
        return Injection(injected_at, healed_at, what, on_target=triggered)
