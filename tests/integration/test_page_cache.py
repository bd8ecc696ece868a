"""ListOrders gives a page again only while no order of its customer was written since.

The front door runs in process on a real database, with its LISTEN
connection (events.py) and the trigger of migration 0012 announcing each
write. To see that an answer is kept, a write is made with the trigger
disabled: the database changed, and only a kept answer can hide it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
import pytest_asyncio

from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.orders.v1 import orders_pb2_grpc
from server.core.auth import Guard
from server.core.database import create_pool, migrate
from server.core.grpc_server import create_server
from server.orders.cache import OrderCache
from server.orders.changes import OrderChanges, Verdict
from server.orders.events import OrderEvents
from server.orders.page_cache import PageCache
from server.orders.reads import OrderReads
from server.orders.repository import OrderRepository
from server.orders.servicer import OrderServicer
from tests.integration.test_order_listing import FrontDoor, Tokens, store_order
from tests.support.database import scratch_database
from tests.support.polling import eventually

State = pb.OrderState
_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class CachingFrontDoor(FrontDoor):
    url: str
    reads: OrderReads
    pages: PageCache
    placed: int = 0

    async def store(self, customer: str, state: State.ValueType = State.ORDER_STATE_PAID) -> str:
        """An order of `customer`, newer than every order stored before."""
        self.placed += 1
        at = _START + timedelta(minutes=self.placed)
        return await store_order(self.pool, customer, at, state)

    async def store_unannounced(self, customer: str) -> str:
        """An order written with the trigger off: no process hears of it."""
        await self.pool.execute("ALTER TABLE orders.orders DISABLE TRIGGER announce_customer")
        try:
            return await self.store(customer)
        finally:
            await self.pool.execute("ALTER TABLE orders.orders ENABLE TRIGGER announce_customer")

    async def ids(self, request: pb.ListOrdersRequest, token: str = "operator") -> list[str]:
        return [order.order_id for order in (await self.list(request, token)).orders]


async def _hearing(pages: PageCache) -> None:
    """Waits for the LISTEN connection to be up: until then nothing is kept."""

    async def live() -> bool:
        return pages.live

    await eventually(live, bool, every=0.02)


@pytest_asyncio.fixture
async def front_door(tmp_path: Path) -> AsyncIterator[CachingFrontDoor]:
    async with scratch_database(tmp_path) as url:
        pool: asyncpg.Pool = await create_pool(url, max_size=4)
        await migrate(pool, "orders")
        pages = PageCache()
        events = OrderEvents(url, OrderCache(), pages)
        events.start()
        reads = OrderReads(
            orders=OrderRepository(pool),
            workflows=None,  # type: ignore[arg-type]
            events=events,
            pages=pages,
        )
        servicer = OrderServicer(
            placing=None,  # type: ignore[arg-type]
            reads=reads,
            changes=None,  # type: ignore[arg-type]
        )
        server, port, _ = create_server(
            "127.0.0.1:0",
            service_names=["orders.v1.OrderService"],
            guard=Guard(tokens=Tokens(), certificates=False),  # type: ignore[arg-type]
            reflection_on=False,
        )
        orders_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await _hearing(pages)
                yield CachingFrontDoor(pool, channel, url, reads, pages)
        finally:
            await server.stop(None)
            await events.close()
            await pool.close()


async def test_a_page_is_given_again_until_an_order_of_its_customer_is_written(
    front_door: CachingFrontDoor,
) -> None:
    first = await front_door.store("alice")
    alices = pb.ListOrdersRequest(customer_id="alice")
    assert await front_door.ids(alices) == [first]

    await front_door.store_unannounced("alice")
    assert await front_door.ids(alices) == [first], "the answer given before"

    announced = await front_door.store("alice")

    shown = await eventually(lambda: front_door.ids(alices), lambda ids: ids[0] == announced)
    assert len(shown) == 3


async def test_another_customers_write_forgets_every_customers_page_but_not_this_one(
    front_door: CachingFrontDoor,
) -> None:
    alices, everyones = pb.ListOrdersRequest(customer_id="alice"), pb.ListOrdersRequest()
    first = await front_door.store("alice")
    assert await front_door.ids(alices) == [first]
    assert await front_door.ids(everyones) == [first]
    hidden = await front_door.store_unannounced("alice")
    assert await front_door.ids(everyones) == [first], "the answer given before"

    bobs = await front_door.store("bob")

    await eventually(lambda: front_door.ids(everyones), lambda ids: ids == [bobs, hidden, first])
    assert await front_door.ids(alices) == [first], "alice's page outlived bob's write"


async def test_an_operator_and_a_customer_service_are_given_their_own_answers(
    front_door: CachingFrontDoor,
) -> None:
    failed = await store_order(
        front_door.pool,
        "alice",
        _START,
        State.ORDER_STATE_FAILED,
        pb.OrderFailure(reason="PAYMENT_DECLINED", message="gateway 10.0.0.7:8443 said 402"),
    )
    alices = pb.ListOrdersRequest(customer_id="alice")
    raw = "gateway 10.0.0.7:8443 said 402"

    for _ in range(2):  # the second round from the cache
        (as_operator,) = (await front_door.list(alices, "operator")).orders
        (as_shop,) = (await front_door.list(alices, "customer:alice")).orders
        unnamed = pb.ListOrdersRequest()
        (as_shop_unnamed,) = (await front_door.list(unnamed, "customer:alice")).orders
        assert as_operator.order_id == as_shop.order_id == failed
        assert as_operator.failure.message == raw
        assert as_shop.failure.message != raw
        assert as_shop_unnamed == as_shop
    assert await front_door.ids(pb.ListOrdersRequest(), "customer:bob") == []


async def test_a_refused_request_is_refused_again(front_door: CachingFrontDoor) -> None:
    await front_door.store("alice")
    forged = pb.ListOrdersRequest(customer_id="alice", page_token="forged")
    someone_elses = pb.ListOrdersRequest(customer_id="alice")
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await front_door.list(forged, "operator")
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await front_door.list(someone_elses, "customer:bob")
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_a_change_taken_here_shows_in_the_next_page_without_its_announcement(
    front_door: CachingFrontDoor,
) -> None:
    order = await front_door.store("alice")
    alices = pb.ListOrdersRequest(customer_id="alice")
    (before,) = (await front_door.list(alices, "operator")).orders
    assert before.state == State.ORDER_STATE_PAID

    await front_door.pool.execute("ALTER TABLE orders.orders DISABLE TRIGGER announce_customer")
    try:
        assert await OrderChanges(front_door.pool).cancel(order, "no") is Verdict.ACCEPTED
    finally:
        await front_door.pool.execute("ALTER TABLE orders.orders ENABLE TRIGGER announce_customer")
    await front_door.reads.latest(order)  # what the change's call answers with

    (after,) = (await front_door.list(alices, "operator")).orders
    assert after.state == State.ORDER_STATE_CANCELLING


async def test_pages_kept_while_the_connection_was_lost_are_not_given_again(
    front_door: CachingFrontDoor,
) -> None:
    first = await front_door.store("alice")
    alices = pb.ListOrdersRequest(customer_id="alice")
    assert await front_door.ids(alices) == [first]
    hidden = await front_door.store_unannounced("alice")

    await front_door.pool.execute(
        """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"""
    )

    await eventually(lambda: front_door.ids(alices), lambda ids: ids == [hidden, first])
    await _hearing(front_door.pages)
    assert await front_door.ids(alices) == [hidden, first]
