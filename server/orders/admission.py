"""Who gets in: admission control at the front door.

The platform ships a certain number of orders a second. A burst far beyond
that must be turned away at once and fairly, and what is let in must go
through at its normal speed, not wait in a queue until the caller's deadline.
So every CreateOrder is checked, in memory and before anything is stored (no
payment method, no workflow, no order), against:

* the platform's real backlog: orders admitted whose workflow no worker has
  picked up yet (still at the version the front door wrote). Past
  ADMISSION_MAX_WAITING the workers are behind, and new orders wait outside;
* orders in flight (admitted, not yet shipped or ended), for its customer
  (ADMISSION_CUSTOMER_IN_FLIGHT) and for everyone (ADMISSION_IN_FLIGHT);
* a rate per customer (ADMISSION_CUSTOMER_ORDER_RATE) and for everyone
  (ADMISSION_ORDER_RATE), over a sliding window (the `limits` library's
  strategy, over counts kept in window_counts.py).

Reads stay open, but what they can hold is capped: each caller's reads in
progress at once (ADMISSION_CALLER_READS), and open WatchOrder streams per
caller (ADMISSION_CALLER_STREAMS) and overall (ADMISSION_STREAMS).

A refusal is RESOURCE_EXHAUSTED, RATE_LIMITED when it is this caller's own
excess and OVERLOADED when it is the platform's, with a `google.rpc.RetryInfo`
saying when to come back; the project's clients wait that long and retry.

The in-flight and waiting counts are the projection's, which every front door
shares: a refresh every ADMISSION_REFRESH_SECONDS (one grouped query over a
partial index of the orders in flight), plus the orders this process has
admitted that no refresh has seen stored yet, so that a burst between two
refreshes is counted at once, and each order once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import structlog
from limits import RateLimitItem, parse
from limits.strategies import SlidingWindowCounterRateLimiter
from prometheus_client import Counter as Metric
from prometheus_client import Gauge

from clients.errors import Error, Reason
from server.core.auth import Role, caller
from server.orders.window_counts import WindowCounts

log = structlog.get_logger(__name__)

REFUSED = Metric(
    "admission_refused_total",
    "Calls refused at the front door before any work, by rule",
    ["rule"],
)
IN_FLIGHT = Gauge("admission_orders_in_flight", "Orders admitted and not yet shipped or ended")
WAITING = Gauge(
    "admission_orders_waiting", "Orders admitted whose workflow no worker has picked up yet"
)
STREAMS = Gauge("admission_watch_streams", "WatchOrder streams open on this front door")

# Orders in flight: admitted, and neither shipped nor ended (the states of
# the partial index of migration 0008).
IN_FLIGHT_STATES = [
    "ORDER_STATE_PENDING",
    "ORDER_STATE_RESERVED",
    "ORDER_STATE_PAID",
    "ORDER_STATE_SHIPPING",
    "ORDER_STATE_CANCELLING",
    "ORDER_STATE_COMPENSATING",
]
# The version the front door writes; a workflow's own writes come after.
ACCEPTED_VERSION = 0
# When a full platform asks callers to come back: about as long as a short
# backlog takes to drain. Jitter comes from the callers' own backoff.
BUSY_RETRY_SECONDS = 1.0
READS_RETRY_SECONDS = 0.1


@dataclass(frozen=True)
class AdmissionLimits:
    enabled: bool = True
    customer_order_rate: str = "10 per 2 seconds"
    order_rate: str = "200 per 2 seconds"
    customer_in_flight: int = 50
    in_flight: int = 300
    max_waiting: int = 100
    caller_reads: int = 100
    caller_streams: int = 100
    streams: int = 2000
    refresh_seconds: float = 0.5


@dataclass(eq=False)
class _Placing:
    """An order admitted by this process, and when it was stored (None: not yet)."""

    customer_id: str
    order_id: str
    stored_at: float | None = None


@dataclass
class _Counts:
    """In flight per customer, and waiting, as of the last refresh."""

    in_flight: Counter[str]
    waiting: int
    at: float


class Admission:
    def __init__(self, limits: AdmissionLimits, pool: asyncpg.Pool | None = None) -> None:
        self._limits = limits
        self._pool = pool
        # The library's strategy over counts kept for one event loop (window_counts.py).
        self._window = SlidingWindowCounterRateLimiter(WindowCounts())
        self._customer_rate: RateLimitItem = parse(limits.customer_order_rate)
        self._order_rate: RateLimitItem = parse(limits.order_rate)
        self._counts = _Counts(Counter(), 0, time.monotonic())
        # Orders this process admitted that the last refresh did not count.
        self._placing: list[_Placing] = []
        self._reads: Counter[str] = Counter()
        self._streams: Counter[str] = Counter()
        self._refresher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------- orders

    @contextlib.contextmanager
    def order(self, customer_id: str, order_id: str) -> Iterator[_Placing]:
        """Admits a CreateOrder (or raises the refusal) and counts it while it is placed.

        An order placed is counted here until a refresh's query has seen its
        row (that query's counts include it from then on); one that failed,
        or that turns out to have been placed before (`placed_before`), at
        once no more.
        """
        self._admit(customer_id)
        ticket = _Placing(customer_id, order_id)
        self._placing.append(ticket)
        try:
            yield ticket
        except BaseException:
            self._forget(ticket)
            raise
        ticket.stored_at = time.monotonic()

    def placed_before(self, ticket: _Placing) -> None:
        """The order existed before this call: the projection counts it, not this ticket."""
        self._forget(ticket)

    def _forget(self, ticket: _Placing) -> None:
        # A refresh may have dropped it already, having seen its row.
        with contextlib.suppress(ValueError):
            self._placing.remove(ticket)

    def platform_refusal(self) -> Error | None:
        """The refusal of any CreateOrder while the platform is full, whoever sends it.

        Asked before the call is authenticated, parsed or traced (see
        `refused_early_by` in server/core/grpc_server.py): while the platform
        sheds load, a refusal should cost as little as possible, or refusing
        takes the capacity that admitted orders need. It only looks; the
        global rate is counted when an order is admitted.
        """
        if not self._limits.enabled:
            return None
        limits = self._limits
        waiting = self.waiting
        if waiting >= limits.max_waiting:
            return self._refuse(
                "backlog",
                Reason.OVERLOADED,
                f"the platform is behind: {waiting} orders wait for a worker",
                BUSY_RETRY_SECONDS,
            )
        total = self._counts.in_flight.total() + len(self._placing)
        if total >= limits.in_flight:
            return self._refuse(
                "in_flight",
                Reason.OVERLOADED,
                f"the platform has {total} orders in flight, its limit",
                BUSY_RETRY_SECONDS,
            )
        if not self._window.test(self._order_rate, "all"):
            return self._refuse(
                "rate",
                Reason.OVERLOADED,
                f"orders arrive faster than {limits.order_rate}",
                self._wait(self._order_rate, "all"),
            )
        return None

    @property
    def waiting(self) -> int:
        """Orders admitted whose workflow no worker has picked up, as this process counts them."""
        return self._counts.waiting + len(self._placing)

    def _admit(self, customer_id: str) -> None:
        if not self._limits.enabled:
            return
        limits = self._limits
        full = self.platform_refusal()
        if full is not None:
            raise full
        mine = self._counts.in_flight[customer_id] + sum(
            1 for ticket in self._placing if ticket.customer_id == customer_id
        )
        if mine >= limits.customer_in_flight:
            raise self._refuse(
                "customer_in_flight",
                Reason.RATE_LIMITED,
                f"this customer has {mine} orders in flight, its limit",
                BUSY_RETRY_SECONDS,
            )
        if not self._window.test(self._customer_rate, "customer", customer_id):
            raise self._refuse(
                "customer_rate",
                Reason.RATE_LIMITED,
                f"this customer places orders faster than {limits.customer_order_rate}",
                self._wait(self._customer_rate, "customer", customer_id),
            )
        # platform_refusal found room in the global rate, and nothing between
        # it and here awaits: the order is counted against both windows.
        self._window.hit(self._order_rate, "all")
        self._window.hit(self._customer_rate, "customer", customer_id)

    def _wait(self, item: RateLimitItem, *keys: str) -> float:
        reset_at = self._window.get_window_stats(item, *keys).reset_time
        return max(0.05, min(reset_at - time.time(), float(item.get_expiry())))

    @staticmethod
    def _refuse(rule: str, reason: Reason, message: str, retry_after: float) -> Error:
        REFUSED.labels(rule).inc()
        return Error(
            reason,
            f"{message}; nothing was stored: retry in {retry_after:.1f} s",
            {"rule": rule},
            retry_delay=retry_after,
        )

    # -------------------------------------------------------------- reads

    def read(self, caller: str) -> _HeldRead:
        """Holds one of `caller`'s reads in progress for the `with` block.

        A class rather than a generator: every GetOrder and ListOrders enters
        it, and a generator-based context manager costs several times as much.
        """
        return _HeldRead(self, caller)

    def _hold_read(self, caller: str) -> None:
        if self._limits.enabled and self._reads[caller] >= self._limits.caller_reads:
            raise self._refuse(
                "caller_reads",
                Reason.RATE_LIMITED,
                f"this caller has {self._reads[caller]} reads in progress, its limit",
                READS_RETRY_SECONDS,
            )
        self._reads[caller] += 1

    def _release_read(self, caller: str) -> None:
        _release(self._reads, caller)

    @contextlib.contextmanager
    def stream(self, caller: str) -> Iterator[None]:
        """Holds one of `caller`'s open WatchOrder streams for the block."""
        limits = self._limits
        if limits.enabled:
            if self._streams.total() >= limits.streams:
                raise self._refuse(
                    "streams",
                    Reason.OVERLOADED,
                    f"{self._streams.total()} order streams are open here, the limit",
                    BUSY_RETRY_SECONDS,
                )
            if self._streams[caller] >= limits.caller_streams:
                raise self._refuse(
                    "caller_streams",
                    Reason.RATE_LIMITED,
                    f"this caller has {self._streams[caller]} order streams open, its limit",
                    BUSY_RETRY_SECONDS,
                )
        self._streams[caller] += 1
        STREAMS.inc()
        try:
            yield
        finally:
            _release(self._streams, caller)
            STREAMS.dec()

    # ------------------------------------------------------------ refresh

    async def refresh(self) -> None:
        """Reads the orders in flight and waiting from the projection.

        The same statement, so the same snapshot, says which of the orders
        this process is placing it saw stored: those are in its counts, and
        their tickets are dropped. (Judged by the time a ticket was stored
        instead, an order stored while the query waited for a connection
        would count twice until the next refresh: in the answer, and by its
        ticket.)
        """
        if self._pool is None:
            return
        started = time.monotonic()
        asked = list(self._placing)
        rows = await self._pool.fetch(
            """SELECT customer_id, count(*) AS in_flight,
                      count(*) FILTER (WHERE version = $2) AS waiting, NULL AS seen
                 FROM orders.orders
                WHERE state = ANY($1::text[])
                GROUP BY customer_id
               UNION ALL
               SELECT NULL, 0, 0, order_id FROM orders.orders WHERE order_id = ANY($3::text[])""",
            IN_FLIGHT_STATES,
            ACCEPTED_VERSION,
            list({ticket.order_id for ticket in asked}),
        )
        counted = [row for row in rows if row["seen"] is None]
        seen = {row["seen"] for row in rows} - {None}
        in_flight = Counter({row["customer_id"]: row["in_flight"] for row in counted})
        self._counts = _Counts(in_flight, sum(row["waiting"] for row in counted), time.monotonic())
        self._placing = [
            ticket
            for ticket in self._placing
            if ticket.order_id not in seen
            # Stored before the query began and still not seen: no row of it
            # is left to count, and no later refresh would drop its ticket.
            and (ticket.stored_at is None or ticket.stored_at >= started)
        ]
        IN_FLIGHT.set(in_flight.total())
        WAITING.set(self._counts.waiting)

    def start(self) -> None:
        if self._pool is None or not self._limits.enabled:
            return

        async def loop() -> None:
            while True:
                try:
                    await self.refresh()
                except (OSError, asyncpg.PostgresError) as error:
                    log.warning("admission counts not refreshed", error=str(error))
                await asyncio.sleep(self._limits.refresh_seconds)

        self._refresher = asyncio.create_task(loop(), name="admission-refresh")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher


class _HeldRead:
    """One read in progress, counted against its caller while its block runs."""

    __slots__ = ("_admission", "_caller")

    def __init__(self, admission: Admission, caller: str) -> None:
        self._admission = admission
        self._caller = caller

    def __enter__(self) -> None:
        self._admission._hold_read(self._caller)

    def __exit__(self, *exc_info: object) -> None:
        self._admission._release_read(self._caller)


def caller_key() -> str:
    """Whose share a read or a stream counts against: its customer, or its token's subject."""
    identity = caller()
    if identity.role is Role.CUSTOMER_SERVICE and identity.customer_id is not None:
        return f"customer:{identity.customer_id}"
    return f"subject:{identity.subject}"


def _release(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
