"""Admission control: one caller's flood is turned away at once, and nothing it sent is kept.

Each test runs a stack of its own, on a database of its own (admission counts
the orders in flight across the whole projection), with one rule set tight.
A refusal must be RESOURCE_EXHAUSTED with a RetryInfo, must store nothing
(no payment method, no order, no workflow), and must leave every other
customer's orders alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from clients.errors import Reason, retry_delay
from clients.orders import OrdersClient
from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import Role
from tests.support.database import scratch_database
from tests.support.orders import order_request, rpc_error, stock_sku, wait_for
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def admitting(
    temporal: WorkflowEnvironment, tmp_path: Path, **rules: str
) -> AsyncIterator[tuple[Stack, asyncpg.Pool]]:
    async with scratch_database(tmp_path / "db") as url:
        address = temporal.client.service_client.config.target_host
        async with running_stack(
            tmp_path / "stack", url, address, SHIPPING_BOOKING_SECONDS="0", **rules
        ) as stack:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
            try:
                yield stack, pool
            finally:
                await pool.close()


async def refused(call: object) -> tuple[Reason, float | None]:
    """Awaits a call that admission must refuse; returns its reason and RetryInfo."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        code, decoded = await rpc_error(_raise(error))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, decoded
        return decoded.reason, retry_delay(error)
    raise AssertionError("the call was admitted")


async def _raise(error: grpc.aio.AioRpcError) -> None:
    raise error


async def stored_for(pool: asyncpg.Pool, customer_id: str) -> tuple[int, int]:
    """(payment methods, orders) the platform keeps for a customer."""
    methods = await pool.fetchval(
        "SELECT count(*) FROM payments.payment_methods WHERE customer_id = $1", customer_id
    )
    orders = await pool.fetchval(
        "SELECT count(*) FROM orders.orders WHERE customer_id = $1", customer_id
    )
    return methods, orders


def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


async def test_a_customer_over_its_rate_is_refused_and_nothing_is_kept(
    temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with admitting(temporal, tmp_path, ADMISSION_CUSTOMER_ORDER_RATE="3 per 30 seconds") as (
        stack,
        pool,
    ):
        flooder, other = customer(), customer()
        as_flooder = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=flooder).orders
        sku = await stock_sku(stack, quantity=100)
        first = order_request(sku, customer_id=flooder)
        accepted = (await as_flooder.CreateOrder(first)).order
        for _ in range(2):
            await as_flooder.CreateOrder(order_request(sku, customer_id=flooder))

        reason, delay = await refused(
            as_flooder.CreateOrder(order_request(sku, customer_id=flooder))
        )
        assert reason is Reason.RATE_LIMITED
        assert delay is not None and 0 < delay <= 30
        assert await stored_for(pool, flooder) == (3, 3)
        # A repeat of an accepted order is turned away too, and answered once
        # the window has room again.
        reason, delay = await refused(as_flooder.CreateOrder(first))
        assert reason is Reason.RATE_LIMITED and delay
        assert await stored_for(pool, flooder) == (3, 3)
        assert accepted.order_id
        # Another customer is not held back by the first one's excess.
        as_other = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=other).orders
        placed = await as_other.CreateOrder(order_request(sku, customer_id=other))
        await wait_for(stack, placed.order.order_id, (pb.ORDER_STATE_SHIPPED,))


async def test_orders_in_flight_are_capped_per_customer_and_overall(
    temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with admitting(
        temporal,
        tmp_path,
        ADMISSION_CUSTOMER_IN_FLIGHT="2",
        ADMISSION_IN_FLIGHT="3",
        # A slow card keeps an order in flight for as long as the test needs.
        PAYMENTS_SLOW_SECONDS="20",
    ) as (stack, pool):
        first, second, third = customer(), customer(), customer()
        sku = await stock_sku(stack, quantity=100)
        for _ in range(2):
            await stack.orders.CreateOrder(order_request(sku, customer_id=first, token="tok_slow"))
        reason, delay = await refused(
            stack.orders.CreateOrder(order_request(sku, customer_id=first, token="tok_slow"))
        )
        assert reason is Reason.RATE_LIMITED and delay
        await stack.orders.CreateOrder(order_request(sku, customer_id=second, token="tok_slow"))
        reason, delay = await refused(
            stack.orders.CreateOrder(order_request(sku, customer_id=third))
        )
        assert reason is Reason.OVERLOADED and delay
        assert await stored_for(pool, third) == (0, 0)
        assert await stored_for(pool, first) == (2, 2)


async def test_new_orders_wait_outside_while_the_workers_are_behind(
    temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with admitting(temporal, tmp_path, ADMISSION_MAX_WAITING="2") as (stack, pool):
        sku = await stock_sku(stack, quantity=100)
        stack.process("worker").stop()
        waiting = [
            (await stack.orders.CreateOrder(order_request(sku, customer_id=customer()))).order
            for _ in range(2)
        ]
        late = customer()
        reason, delay = await refused(
            stack.orders.CreateOrder(order_request(sku, customer_id=late))
        )
        assert reason is Reason.OVERLOADED and delay
        assert await stored_for(pool, late) == (0, 0)

        # A full platform refuses before it authenticates or parses a call:
        # shedding must cost little. No token, and bytes that are no request,
        # get the same refusal (UNAUTHENTICATED once there is room again).
        anonymous = stack.channel("orders", stack.unchecked)
        raw = anonymous.unary_unary("/orders.v1.OrderService/CreateOrder")
        reason, delay = await refused(raw(b"\xff not a request"))
        assert reason is Reason.OVERLOADED and delay

        # The workers catch up: what waited ships, and new orders are let in again.
        stack.process("worker").start()
        for order in waiting:
            await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))

        async def admitted() -> pb.Order:
            while True:
                try:
                    request = order_request(sku, customer_id=late)
                    return (await stack.orders.CreateOrder(request)).order
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    await asyncio.sleep(0.2)

        order = await asyncio.wait_for(admitted(), 30)
        await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))

        # Once shipped it leaves the backlog at the next refresh (every 0.5 s):
        # the refresh that saw it stored dropped its ticket, so nothing
        # counts it twice (tests/integration/test_admission_counts.py).
        async def unauthenticated() -> grpc.StatusCode:
            while True:
                with pytest.raises(grpc.aio.AioRpcError) as anonymous_now:
                    await raw(b"\xff not a request")
                if anonymous_now.value.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    return anonymous_now.value.code()
                await asyncio.sleep(0.2)

        assert await asyncio.wait_for(unauthenticated(), 5) == grpc.StatusCode.UNAUTHENTICATED
        await anonymous.close()


async def test_a_callers_open_streams_are_capped(
    temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with admitting(temporal, tmp_path, ADMISSION_CALLER_STREAMS="2") as (stack, _):
        sku = await stock_sku(stack, quantity=100)
        mine = customer()
        as_mine = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=mine).orders
        order = (await as_mine.CreateOrder(order_request(sku, customer_id=mine))).order
        request = pb.WatchOrderRequest(order_id=order.order_id)
        streams = [as_mine.WatchOrder(request) for _ in range(2)]
        for stream in streams:
            await stream.read()
        third = as_mine.WatchOrder(request)
        reason, delay = await refused(third.read())
        assert reason is Reason.RATE_LIMITED and delay
        # Another caller's streams are its own.
        operator_stream = stack.orders.WatchOrder(request)
        await operator_stream.read()
        operator_stream.cancel()
        # A stream that ends gives its place back.
        streams[0].cancel()

        async def reopened() -> None:
            while True:
                again = as_mine.WatchOrder(request)
                try:
                    await again.read()
                    again.cancel()
                    return
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.1)

        await asyncio.wait_for(reopened(), 10)
        streams[1].cancel()


async def test_the_python_client_waits_as_told_and_gets_in(
    temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with admitting(temporal, tmp_path, ADMISSION_CUSTOMER_ORDER_RATE="1 per 2 seconds") as (
        stack,
        _,
    ):
        sku = await stock_sku(stack, quantity=100)
        mine = customer()
        credentials = stack.credentials(Role.CUSTOMER_SERVICE, customer_id=mine)
        async with OrdersClient(f"127.0.0.1:{stack.ports['orders']}", credentials) as client:
            # The second is refused with a RetryInfo; the client waits it out and repeats.
            placed = [
                await client.send_create_order(order_request(sku, customer_id=mine))
                for _ in range(2)
            ]
        assert len({response.order.order_id for response in placed}) == 2
