"""Keeping a round's orders in flight: at most `in_flight` unsettled at once.

Each order is placed with CreateOrder, repeated with the same request_id
until the front door answers; a planned cancellation follows after its delay,
repeated the same way; then the order holds its slot until it settles. An
order that does not settle within `settle_timeout` of its acceptance, or of
the end of the fault if that came later, gives its slot up and is stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from clients.proto.orders.v1 import orders_pb2 as pb
from tests.faults.calls import Tally, rpc, until_answered
from tests.faults.mix import Kind, PlannedOrder
from tests.faults.tracker import Tracker
from tests.support.stack import Stack

# Longer than the front door's own wait on the workflow (ORDER_WORKFLOW_WAIT_SECONDS).
ATTEMPT_TIMEOUT = 15.0
CHECK_SECONDS = 0.25


class Load:
    def __init__(
        self,
        stack: Stack,
        plan: list[PlannedOrder],
        tracker: Tracker,
        tally: Tally,
        clock: Callable[[], float],
        *,
        in_flight: int,
        settle_timeout: float,
    ) -> None:
        self._stack = stack
        self.plan = plan
        self.tracker = tracker
        self.tally = tally
        self.in_flight = in_flight
        self._slots = asyncio.Semaphore(in_flight)
        self._settle_timeout = settle_timeout
        self.now = clock  # seconds on the round's clock
        # Set by the round once the fault is over (round clock); until then nobody gives up.
        self.healed_at: float | None = None
        self.creates_in_flight = 0
        self.accepted = 0
        self.done = asyncio.Event()
        self._cancels: list[asyncio.Task[None]] = []
        self._kinds: dict[str, Kind] = {}

    def kind_of(self, order_id: str) -> Kind | None:
        """The kind of an order this load placed (None if the answer has not come yet)."""
        return self._kinds.get(order_id)

    def _past_deadline(self, since: float | None) -> bool:
        if self.healed_at is None:
            return False
        return self.now() > max(since or 0.0, self.healed_at) + self._settle_timeout

    async def run(self) -> None:
        try:
            await asyncio.gather(*(self._one(order) for order in self.plan))
            await asyncio.gather(*self._cancels)
        finally:
            self.done.set()

    async def _one(self, order: PlannedOrder) -> None:
        async with self._slots:
            await self._place(order)
            if not order.order_id:
                return
            if order.kind is Kind.CANCELLED:
                self._cancels.append(asyncio.create_task(self._cancel_later(order)))
            settled = self.tracker.settled(order.order_id)
            while not settled.is_set() and not self._past_deadline(order.accepted_at):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(settled.wait(), CHECK_SECONDS)

    async def _place(self, order: PlannedOrder) -> None:
        order.sent_at = self.now()
        self.creates_in_flight += 1
        try:
            order.create = await until_answered(
                "CreateOrder",
                rpc(self._stack.orders.CreateOrder, order.request),
                self.tally,
                attempt_timeout=ATTEMPT_TIMEOUT,
                give_up=lambda: self._past_deadline(order.sent_at),
            )
        finally:
            self.creates_in_flight -= 1
        if order.create.response is not None:
            order.order_id = order.create.response.order.order_id
            order.accepted_at = self.now()
            self._kinds[order.order_id] = order.kind
            self.accepted += 1

    async def _cancel_later(self, order: PlannedOrder) -> None:
        await asyncio.sleep(order.cancel_after)
        order.cancel = await until_answered(
            "CancelOrder",
            rpc(
                self._stack.orders.CancelOrder,
                pb.CancelOrderRequest(order_id=order.order_id, reason="fault suite"),
            ),
            self.tally,
            attempt_timeout=ATTEMPT_TIMEOUT,
            give_up=lambda: self._past_deadline(order.accepted_at),
        )
