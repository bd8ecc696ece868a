"""Traffic through the platform's front door: orders placed and followed to SHIPPED.

An order is followed with WatchOrder (a server stream that pushes each change
of state), not by polling GetOrder: the watcher learns of SHIPPED as soon as
the projection has it, and costs the front door one stream, not a read per poll.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc

from bench.driver import Tick
from bench.stack import Platform
from bench.stats import Latency, tally
from clients.proto.common.v1 import address_pb2, money_pb2
from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.orders.v1 import orders_pb2 as pb
from worker.model import SHIPPED_STATES, TERMINAL_STATES

# Far past the front door's own wait on the workflow (10 s by default), so a
# slow answer shows as the front door's UNAVAILABLE, not as the caller giving up.
CALL_TIMEOUT = 60.0
SHIP_TIMEOUT = 180.0
CATALOG_SIZE = 4
CUSTOMERS = 10
# Enough stock that no run ever sells out.
STOCK = 10**9
# A refused CreateOrder is repeated this many times, with pauses growing by this much.
RETRY_ATTEMPTS = 5
RETRY_PAUSE = 1.0


class OrderNotShipped(Exception):
    """The order ended without shipping (FAILED or CANCELLED)."""


@dataclass
class CreateCalls:
    """Every CreateOrder answer of a run: how long each accepted one took, and the
    status of each refused one (a refused call is repeated, so both can be of one order)."""

    seconds: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Burst:
    """N CreateOrder calls sent at once, and what became of them."""

    calls: int
    seconds: float
    # Answers by gRPC status code.
    codes: dict[str, int]
    latency: Latency
    # Calls not answered OK whose repeat (same request_id) returned the order.
    recovered_on_retry: int
    # Orders of the burst that reached SHIPPED in the end.
    shipped_afterwards: int


class OrderTraffic:
    """Places orders for a small catalog and a few customers, as shops would."""

    def __init__(self, platform: Platform) -> None:
        self._orders = platform.orders
        self._inventory = platform.inventory
        self._run = uuid.uuid4().hex[:8]
        self.skus = [f"BENCH-{self._run.upper()}-{i}" for i in range(CATALOG_SIZE)]
        self.customers = [f"bench-{self._run}-customer-{i}" for i in range(CUSTOMERS)]
        self.shipped: list[str] = []

    async def stock_catalog(self) -> None:
        """Sets the catalog up with the operator's SetStock call."""
        for i, sku in enumerate(self.skus):
            await self._inventory.SetStock(
                inventory_pb2.SetStockRequest(
                    sku=sku,
                    quantity=STOCK,
                    unit_price=money_pb2.Money(currency_code="USD", amount_minor=1250 + i),
                ),
                timeout=CALL_TIMEOUT,
            )

    def request(self, index: int, customer_id: str = "") -> pb.CreateOrderRequest:
        """An order of the catalog, for `customer_id` or else one of the run's customers."""
        return pb.CreateOrderRequest(
            request_id=str(uuid.uuid4()),
            customer_id=customer_id or self.customers[index % len(self.customers)],
            line_items=[
                pb.LineItemRequest(sku=self.skus[index % len(self.skus)], quantity=1 + index % 3)
            ],
            shipping_address=address_pb2.PostalAddress(
                name="Ada Lovelace",
                line1="12 Analytical Row",
                city="London",
                postal_code="N1 9GU",
                country_code="GB",
            ),
            payment_token="tok_visa",
        )

    async def create(self, request: pb.CreateOrderRequest) -> pb.Order:
        response = await self._orders.CreateOrder(request, timeout=CALL_TIMEOUT)
        return response.order

    async def until_shipped(self, order_id: str) -> pb.Order:
        """Watches the order until it has shipped; raises if it ends otherwise."""
        stream = self._orders.WatchOrder(
            pb.WatchOrderRequest(order_id=order_id), timeout=SHIP_TIMEOUT
        )
        async for message in stream:
            state = message.order.state
            if state in SHIPPED_STATES:
                stream.cancel()
                self.shipped.append(order_id)
                return message.order
            if state in TERMINAL_STATES:
                stream.cancel()
                raise OrderNotShipped(f"{order_id} ended {pb.OrderState.Name(state)}")
        raise OrderNotShipped(f"the watch of {order_id} ended before the order shipped")

    async def accepted(self, request: pb.CreateOrderRequest, calls: CreateCalls) -> pb.Order:
        """CreateOrder, repeated with the same request_id while it is refused, as the
        front door's UNAVAILABLE asks a caller to; every answer is noted in `calls`."""
        for attempt in range(RETRY_ATTEMPTS):
            await asyncio.sleep(RETRY_PAUSE * attempt)
            started = time.perf_counter()
            try:
                order = await self.create(request)
            except grpc.aio.AioRpcError as error:
                calls.refused.append(error.code().name)
                if attempt == RETRY_ATTEMPTS - 1:
                    raise
            else:
                calls.seconds.append(time.perf_counter() - started)
                return order
        raise AssertionError("unreachable")

    async def place_and_ship(self, index: int, calls: CreateCalls) -> None:
        """One order, from its first CreateOrder until it has SHIPPED."""
        order = await self.accepted(self.request(index), calls)
        await self.until_shipped(order.order_id)

    async def burst(self, calls: int, concurrency: int, tick: Tick) -> Burst:
        """`calls` CreateOrder calls at once; then each refused one is repeated, as a
        caller would, and every order of the burst is followed to SHIPPED."""
        requests = [self.request(i) for i in range(calls)]

        async def call(request: pb.CreateOrderRequest) -> tuple[str, float, str]:
            started = time.perf_counter()
            try:
                order = await self.create(request)
            except grpc.aio.AioRpcError as error:
                return error.code().name, time.perf_counter() - started, ""
            finally:
                tick()
            return "OK", time.perf_counter() - started, order.order_id

        started = time.perf_counter()
        answers = await asyncio.gather(*(call(r) for r in requests))
        seconds = time.perf_counter() - started
        order_ids = [order_id for _, _, order_id in answers if order_id]
        refused = [r for r, (code, _, _) in zip(requests, answers, strict=True) if code != "OK"]
        recovered = await self._retry(refused, concurrency)
        shipped = await self.drain([*order_ids, *recovered], concurrency)
        return Burst(
            calls=calls,
            seconds=round(seconds, 3),
            codes=tally([code for code, _, _ in answers]),
            latency=Latency.of([s for code, s, _ in answers if code == "OK"]),
            recovered_on_retry=len(recovered),
            shipped_afterwards=shipped,
        )

    async def _retry(
        self, requests: Iterable[pb.CreateOrderRequest], concurrency: int
    ) -> list[str]:
        """Repeats each refused request until it is answered; returns the orders."""
        slots = asyncio.Semaphore(concurrency)

        async def repeat(request: pb.CreateOrderRequest) -> str:
            async with slots:
                try:
                    return (await self.accepted(request, CreateCalls())).order_id
                except grpc.aio.AioRpcError:
                    return ""

        order_ids = await asyncio.gather(*(repeat(request) for request in requests))
        return [order_id for order_id in order_ids if order_id]

    async def drain(self, order_ids: list[str], concurrency: int) -> int:
        """Follows the orders until they have shipped, unmeasured; returns how many did."""
        slots = asyncio.Semaphore(concurrency)

        async def follow(order_id: str) -> bool:
            async with slots:
                try:
                    await self.until_shipped(order_id)
                except (OrderNotShipped, grpc.aio.AioRpcError):
                    return False
                return True

        return sum(await asyncio.gather(*(follow(order_id) for order_id in order_ids)))
