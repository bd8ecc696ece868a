"""Two of each: front doors, services and workers, one Temporal, one Postgres.

Orders flow while one front door and one worker die by SIGKILL. Callers
balance over the instances (round_robin over every address of a service) and
repeat what failed with the same request_id; then the fault suite's audit
checks the books: every order exists once and settled, one charge per
shipped order, stock conserved. WatchOrder streams opened on each front door
for a sample of orders see the same changes, though the front doors hear
them from Postgres each on its own. Every instance of every service served
calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from clients.proto.common.v1 import money_pb2
from clients.proto.inventory.v1 import inventory_pb2 as inv
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.orders.v1 import orders_pb2_grpc
from tests.faults.audit import Auditor
from tests.faults.calls import Tally
from tests.faults.load import Load
from tests.faults.mix import SETTLED_STATES, PlannedOrder, Sku, order_plan, stock_plan
from tests.faults.tracker import Tracker
from tests.scale.many import ManyStack
from tests.support.polling import eventually
from tests.support.stack import SERVICES
from tests.support.telemetry import scrape, value

pytestmark = pytest.mark.e2e

ORDERS = 36
IN_FLIGHT = 12
# Every third order is watched on both front doors.
WATCH_EVERY = 3
RESTART_PAUSE = 1.0
# What each service's callers (the worker, the front doors) call on every order.
CALLED_PER_ORDER = {"payments": "Charge", "inventory": "ReserveStock", "shipping": "CreateShipment"}


@pytest_asyncio.fixture
async def many(
    temporal: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> AsyncIterator[ManyStack]:
    stack = ManyStack(
        tmp_path,
        database_url,
        temporal.client.service_client.config.target_host,
        extra_env=dict(
            SHIPPING_BOOKING_SECONDS="1",
            PAYMENTS_SLOW_SECONDS="2",
            # A task of the killed worker is handed to the other after this long.
            ORDER_WORKFLOW_TASK_SECONDS="2",
            ORDER_WORKFLOW_WAIT_SECONDS="4",
        ),
    )
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()


class Watchers:
    """WatchOrder on each front door for a sample of orders, until they settle."""

    def __init__(self, stack: ManyStack) -> None:
        self._stack = stack
        self.seen: dict[tuple[str, str], list[int]] = {}
        self.interrupted: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def watch(self, order_id: str) -> None:
        for front_door in self._stack.instances("orders"):
            self._tasks.append(asyncio.create_task(self._watch(front_door, order_id)))

    async def _watch(self, front_door: str, order_id: str) -> None:
        stub = orders_pb2_grpc.OrderServiceStub(self._stack.channel(front_door))
        states = self.seen.setdefault((order_id, front_door), [])
        while True:
            try:
                async for message in stub.WatchOrder(pb.WatchOrderRequest(order_id=order_id)):
                    states.append(message.order.state)
                    if message.order.state in SETTLED_STATES:
                        return
            except grpc.aio.AioRpcError:
                if states:  # broken mid-stream: changes may have been missed
                    self.interrupted.add(order_id)
                    return
            await asyncio.sleep(0.2)  # the front door is down: wait for it to come back

    async def finish(self) -> None:
        async with asyncio.timeout(120):
            await asyncio.gather(*self._tasks)


async def watch_sample(plan: list[PlannedOrder], watchers: Watchers, load: Load) -> None:
    """Starts the watchers of every sampled order as soon as it is accepted."""
    waiting = plan[::WATCH_EVERY]
    while waiting and not load.done.is_set():
        for planned in [p for p in waiting if p.order_id]:
            watchers.watch(planned.order_id)
            waiting.remove(planned)
        await asyncio.sleep(0.02)


async def kill_mid_flight(stack: ManyStack, load: Load) -> str:
    """SIGKILL of a front door while CreateOrder calls are in flight, and of a worker."""

    async def busy() -> bool:
        # Several at once: round_robin has sent some of them to each front door.
        return (
            load.creates_in_flight >= 3
            and load.tracker.count(lambda o: o.state != pb.ORDER_STATE_PENDING) >= 3
        )

    await eventually(busy, bool, within=60, every=0.01)
    front_door, worker = stack.process("orders-0"), stack.process("worker-0")
    in_flight = load.creates_in_flight
    front_door.kill()
    worker.kill()
    await asyncio.sleep(RESTART_PAUSE)
    # The front door comes back; the other worker finishes the orders alone.
    front_door.start()
    await stack.wait_serving("orders-0")
    load.healed_at = load.now()
    return f"{in_flight} CreateOrder calls in flight at the kill"


async def stock(stack: ManyStack, label: str) -> list[Sku]:
    skus = stock_plan(label, ORDERS)
    for sku in skus:
        await stack.inventory.SetStock(
            inv.SetStockRequest(
                sku=sku.sku,
                quantity=sku.stocked,
                unit_price=money_pb2.Money(currency_code="USD", amount_minor=sku.price_minor),
            ),
            timeout=10,
        )
    return skus


async def test_two_of_each_lose_and_double_nothing_when_one_of_each_dies(
    many: ManyStack,
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    label = f"many-{random.randrange(1 << 24):06x}"
    customer_id = f"scale-{label}"
    skus = await stock(many, label)
    plan = order_plan(random.Random(11), customer_id, skus, ORDERS, cancel_window=3.0)
    tally = Tally()
    tracker = Tracker(many, customer_id, tally, lambda: loop.time() - started)
    load = Load(
        many,
        plan,
        tracker,
        tally,
        lambda: loop.time() - started,
        in_flight=IN_FLIGHT,
        settle_timeout=90.0,
    )
    watchers = Watchers(many)
    following = asyncio.create_task(tracker.run())
    placing = asyncio.create_task(load.run())
    sampling = asyncio.create_task(watch_sample(plan, watchers, load))
    try:
        what = await kill_mid_flight(many, load)
        async with asyncio.timeout(180):
            await placing
        await sampling
        await watchers.finish()
    finally:
        for task in (placing, following, sampling):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(placing, following, sampling)

    findings = await Auditor(many).audit(plan, skus, customer_id)
    assert findings.placed == findings.orders == ORDERS, (what, findings)
    assert findings.violations == 0, (what, findings)
    # Callers of the killed front door saw it fail, and repeated their calls.
    assert tally.errors() > 0, (what, tally.counts)

    compared = 0
    for order_id in {order_id for order_id, _ in watchers.seen} - watchers.interrupted:
        first, second = (watchers.seen[order_id, name] for name in many.instances("orders"))
        shorter, longer = sorted((first, second), key=len)
        # A stream opened later starts from the state of that moment.
        assert longer[len(longer) - len(shorter) :] == shorter, (order_id, first, second)
        assert longer[-1] in SETTLED_STATES
        compared += len(shorter) > 1
    assert compared >= 4, watchers.seen

    for kind in SERVICES:
        for name in many.instances(kind):
            samples = scrape(many.metrics_url(name))
            method = CALLED_PER_ORDER.get(kind)
            served = value(samples, "grpc_server_handled_total", grpc_method=method or "")
            if method is None:
                served = value(samples, "grpc_server_handled_total")
            assert served > 0, f"{name} served no {method or 'call'}"
