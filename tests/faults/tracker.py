"""Following a round's orders from outside: ListOrders of the round's customer, twice a second.

One call returns every order of the round, where watching each order would
hold hundreds of streams that every front-door restart breaks. The tracker
keeps each order's latest state, when it was first seen settled, and when any
order was last seen to move: the figures of recovery come from these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from clients.proto.orders.v1 import orders_pb2 as pb
from tests.faults.calls import Tally
from tests.faults.mix import SETTLED_STATES
from tests.support.stack import Stack

POLL_SECONDS = 0.5
PAGE_SIZE = 500


class Tracker:
    def __init__(self, stack: Stack, customer_id: str, tally: Tally, clock: Callable[[], float]):
        self._stack = stack
        self.customer_id = customer_id
        self._tally = tally
        self._clock = clock
        self.latest: dict[str, pb.Order] = {}
        self.settled_at: dict[str, float] = {}
        # When a change of state (or a new order) was seen, in order.
        self.moves: list[float] = []
        self._settled: dict[str, asyncio.Event] = {}

    def settled(self, order_id: str) -> asyncio.Event:
        return self._settled.setdefault(order_id, asyncio.Event())

    def count(self, condition: Callable[[pb.Order], bool]) -> int:
        return sum(1 for order in self.latest.values() if condition(order))

    def in_state(self, state: int) -> list[str]:
        return [o.order_id for o in self.latest.values() if o.state == state]

    async def run(self) -> None:
        """Polls until cancelled."""
        while True:
            await self.poll()
            await asyncio.sleep(POLL_SECONDS)

    async def poll(self) -> bool:
        """Reads every order of the round once; False if the front door did not answer."""
        token = ""
        while True:
            try:
                page = await self._stack.orders.ListOrders(
                    pb.ListOrdersRequest(
                        customer_id=self.customer_id, page_size=PAGE_SIZE, page_token=token
                    ),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as error:
                self._tally.failed("ListOrders", error)
                return False
            self._tally.ok("ListOrders")
            for order in page.orders:
                self._see(order)
            token = page.next_page_token
            if not token:
                return True

    def _see(self, order: pb.Order) -> None:
        now = self._clock()
        before = self.latest.get(order.order_id)
        if before is None or before.state != order.state:
            self.moves.append(now)
        self.latest[order.order_id] = order
        if order.state in SETTLED_STATES and order.order_id not in self.settled_at:
            self.settled_at[order.order_id] = now
            self.settled(order.order_id).set()
