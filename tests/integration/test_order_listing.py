"""ListOrders answers with a page framed from the stored orders; its caller sees what it always saw.

The front door runs in process, behind the shared interceptor, on a real
database: each page must parse to the very message the front door built
before, when it parsed every order into a ListOrdersResponse and ran
`disclosed` over it, for an operator and for a customer service, with
changes of mind accepted, a failure to word, an order stored as JSON and one
holding a field this release does not know.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.protobuf import json_format

from clients.errors import Reason, decode
from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.orders.v1 import orders_pb2_grpc
from server.core.auth import Guard, Identity, Role
from server.core.auth.identity import calling_as, restore
from server.core.database import create_pool, migrate
from server.core.grpc_server import create_server
from server.orders.changes import OrderChanges, Verdict
from server.orders.disclosure import disclosed
from server.orders.projection import OrderProjection
from server.orders.reads import OrderReads
from server.orders.repository import OrderRepository
from server.orders.servicer import OrderServicer
from tests.support.database import scratch_database
from tests.workflow_unit.harness import order_input
from worker.model import new_order

State = pb.OrderState
_LIST = "/orders.v1.OrderService/ListOrders"
# A field number no release of orders.v1.Order uses, as a newer worker might write.
_UNKNOWN_FIELD = bytes([0xF8, 0x06, 0x01])  # field 111, varint 1


class Tokens:
    """Bearer tokens for the test: `operator`, or `customer:<id>`."""

    def verify(self, token: str) -> Identity:
        if token.startswith("customer:"):
            customer = token.removeprefix("customer:")
            return Identity("shop", Role.CUSTOMER_SERVICE, customer_id=customer)
        return Identity("ops", Role.OPERATOR)


@dataclass
class FrontDoor:
    pool: asyncpg.Pool
    channel: grpc.aio.Channel

    def as_(self, token: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token}"),)

    async def list_raw(self, request: pb.ListOrdersRequest, token: str) -> bytes:
        """The response's bytes as they came over the wire."""
        call = self.channel.unary_unary(
            _LIST, request_serializer=pb.ListOrdersRequest.SerializeToString
        )
        raw: bytes = await call(request, metadata=self.as_(token))
        return raw

    async def list(self, request: pb.ListOrdersRequest, token: str) -> pb.ListOrdersResponse:
        stub = orders_pb2_grpc.OrderServiceStub(self.channel)
        return await stub.ListOrders(request, metadata=self.as_(token))


@pytest_asyncio.fixture
async def front_door(tmp_path: Path) -> AsyncIterator[FrontDoor]:
    async with scratch_database(tmp_path) as url:
        pool: asyncpg.Pool = await create_pool(url, max_size=4)
        await migrate(pool, "orders")
        orders = OrderRepository(pool)
        # ListOrders reads the database alone.
        reads = OrderReads(
            orders=orders,
            workflows=None,  # type: ignore[arg-type]
            events=None,  # type: ignore[arg-type]
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
                yield FrontDoor(pool, channel)
        finally:
            await server.stop(None)
            await pool.close()


async def store_order(
    pool: asyncpg.Pool,
    customer: str,
    placed: datetime,
    state: State.ValueType,
    failure: pb.OrderFailure | None = None,
) -> str:
    """An order placed by the front door at `placed`, then written by its workflow in `state`."""
    order = new_order(order_input(order_id=f"ord_{uuid.uuid4().hex}", customer_id=customer), placed)
    projection = OrderProjection(pool)
    await projection.record(order, 0, "fp", run_id="run", changes_fenced=True)
    order.state = state
    if failure is not None:
        order.failure.CopyFrom(failure)
    await projection.record(order, 1, "fp", run_id="run")
    return order.order_id


async def _seed(pool: asyncpg.Pool, customer: str) -> list[str]:
    """The customer's orders, newest first, in each of the forms a row can take."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    at = [start + timedelta(minutes=i) for i in range(8)]
    plain = await store_order(pool, customer, at[0], State.ORDER_STATE_SHIPPED)
    declined = await store_order(
        pool,
        customer,
        at[1],
        State.ORDER_STATE_FAILED,
        pb.OrderFailure(reason="PAYMENT_DECLINED", message="gateway 10.0.0.7:8443 said 402"),
    )
    odd = await store_order(
        pool,
        customer,
        at[2],
        State.ORDER_STATE_FAILED,
        pb.OrderFailure(reason="NOT_IN_THE_VOCABULARY", message="Traceback ..."),
    )
    moved = await store_order(pool, customer, at[3], State.ORDER_STATE_RESERVED)
    changes = OrderChanges(pool)
    new_address = address_pb2.PostalAddress(
        name="B", line1="2 Road", city="Y", postal_code="2", country_code="FR"
    )
    assert await changes.change_address(moved, new_address) is Verdict.ACCEPTED
    cancelled = await store_order(pool, customer, at[4], State.ORDER_STATE_PAID)
    assert await changes.cancel(cancelled, "changed my mind") is Verdict.ACCEPTED
    as_json = await store_order(
        pool,
        customer,
        at[5],
        State.ORDER_STATE_FAILED,
        pb.OrderFailure(reason="OUT_OF_STOCK", message="inventory said: none left of SKU-1"),
    )
    stored = await pool.fetchval("SELECT message FROM orders.orders WHERE order_id = $1", as_json)
    await pool.execute(
        "UPDATE orders.orders SET body = $2::jsonb, message = NULL WHERE order_id = $1",
        as_json,
        json_format.MessageToJson(pb.Order.FromString(stored)),
    )
    newer = await store_order(pool, customer, at[6], State.ORDER_STATE_DELIVERED)
    await pool.execute(
        "UPDATE orders.orders SET message = message || $2 WHERE order_id = $1",
        newer,
        _UNKNOWN_FIELD,
    )
    untouched_failure = await store_order(
        pool, customer, at[7], State.ORDER_STATE_CANCELLED, pb.OrderFailure()
    )
    return [untouched_failure, newer, as_json, cancelled, moved, odd, declined, plain]


async def _as_before(
    pool: asyncpg.Pool, order_ids: list[str], next_page_token: str, caller: Identity
) -> pb.ListOrdersResponse:
    """The page as the front door built it before: every order parsed, then `disclosed`."""
    orders = OrderRepository(pool)
    parsed = []
    for order_id in order_ids:
        stored = await orders.get(order_id)
        assert stored is not None
        parsed.append(stored.order)
    token = calling_as(caller)
    try:
        return disclosed(pb.ListOrdersResponse(orders=parsed, next_page_token=next_page_token))
    finally:
        restore(token)


@pytest.mark.parametrize(
    ("token", "caller"),
    [
        ("operator", Identity("ops", Role.OPERATOR)),
        ("customer:alice", Identity("shop", Role.CUSTOMER_SERVICE, customer_id="alice")),
    ],
)
async def test_every_page_parses_to_the_message_built_before(
    front_door: FrontDoor, token: str, caller: Identity
) -> None:
    newest_first = await _seed(front_door.pool, "alice")
    await _seed(front_door.pool, "bob")

    seen: list[str] = []
    page_token = ""
    pages = 0
    while True:
        request = pb.ListOrdersRequest(customer_id="alice", page_size=3, page_token=page_token)
        raw = await front_door.list_raw(request, token)
        page = pb.ListOrdersResponse.FromString(raw)
        ids = [order.order_id for order in page.orders]
        assert page == await _as_before(front_door.pool, ids, page.next_page_token, caller)
        assert await front_door.list(request, token) == page
        seen += ids
        pages += 1
        page_token = page.next_page_token
        if not page_token:
            break
    assert (seen, pages) == (newest_first, 3)


async def test_what_a_customer_service_is_shown_differs_where_it_always_did(
    front_door: FrontDoor,
) -> None:
    newest_first = await _seed(front_door.pool, "alice")
    request = pb.ListOrdersRequest(page_size=50)
    as_operator = await front_door.list(pb.ListOrdersRequest(customer_id="alice"), "operator")
    as_shop = await front_door.list(request, "customer:alice")
    assert [o.order_id for o in as_shop.orders] == newest_first
    assert [o.order_id for o in as_operator.orders] == newest_first
    by_id = {o.order_id: o for o in as_operator.orders}
    for shown in as_shop.orders:
        full = by_id[shown.order_id]
        if full.failure.reason or full.failure.message:
            assert shown.failure.message != full.failure.message
            assert shown.failure.message == Reason(shown.failure.reason).summary
        else:
            assert shown == full
    shown_by_id = {o.order_id: o for o in as_shop.orders}
    assert shown_by_id[newest_first[2]].failure.reason == Reason.OUT_OF_STOCK  # stored as JSON
    assert shown_by_id[newest_first[5]].failure.reason == Reason.INTERNAL  # outside the vocabulary
    # Changes of mind accepted since the workflow last wrote the order.
    assert shown_by_id[newest_first[3]].state == State.ORDER_STATE_CANCELLING
    assert shown_by_id[newest_first[4]].shipping_address.name == "B"


async def test_a_page_with_nothing_in_it_is_the_empty_message(front_door: FrontDoor) -> None:
    await _seed(front_door.pool, "alice")
    request = pb.ListOrdersRequest(customer_id="nobody")
    assert await front_door.list_raw(request, "operator") == b""
    assert await front_door.list_raw(pb.ListOrdersRequest(), "customer:nobody") == b""
    shipped_only = pb.ListOrdersRequest(customer_id="alice", states=[State.ORDER_STATE_SHIPPING])
    assert await front_door.list(shipped_only, "operator") == pb.ListOrdersResponse()


async def test_refusals_are_answered_as_before(front_door: FrontDoor) -> None:
    cases = [
        (pb.ListOrdersRequest(customer_id="bob"), "customer:alice", Reason.PERMISSION_DENIED),
        (pb.ListOrdersRequest(page_token="not-a-token"), "operator", Reason.INVALID_ARGUMENT),
        (pb.ListOrdersRequest(page_size=-1), "operator", Reason.INVALID_ARGUMENT),
    ]
    for request, token, reason in cases:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await front_door.list(request, token)
        assert decode(raised.value).reason is reason
