"""Retries of the typed clients, against an in-process server that fails on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from clients.channels import open_channel
from clients.errors import CallError, Reason
from clients.orders import OrdersClient
from clients.proto.orders.v1 import orders_pb2, orders_pb2_grpc
from clients.retry import RetryPolicy

# Short waits: the tests are about which calls are repeated, not about how long they wait.
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.02)


class FlakyOrders(orders_pb2_grpc.OrderServiceServicer):
    """Fails the first `failures` calls of each method as told, then answers."""

    def __init__(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        self.failures = failures
        self.code = code
        self.request_ids: list[str] = []
        self.hang = asyncio.Event()
        self.watch_calls = 0

    async def CreateOrder(
        self, request: orders_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.CreateOrderResponse:
        self.request_ids.append(request.request_id)
        if len(self.request_ids) <= self.failures:
            if self.code is grpc.StatusCode.DEADLINE_EXCEEDED:
                await self.hang.wait()  # never set: the caller's deadline ends the attempt
            await context.abort(self.code, "try again")
        return orders_pb2.CreateOrderResponse(
            order=orders_pb2.Order(
                order_id=f"ord_{request.request_id}", request_id=request.request_id
            )
        )

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.GetOrderResponse:
        info = error_details_pb2.ErrorInfo(
            reason="ORDER_NOT_FOUND",
            domain="orders.example.com",
            metadata={"order_id": request.order_id, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
        )
        status = status_pb2.Status(code=code_pb2.NOT_FOUND, message="no such order")
        status.details.add().Pack(info)
        await context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("unreachable")

    async def WatchOrder(
        self, request: orders_pb2.WatchOrderRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[orders_pb2.WatchOrderResponse]:
        self.watch_calls += 1
        pending = orders_pb2.Order(order_id=request.order_id, state=orders_pb2.ORDER_STATE_PENDING)
        pending.update_time.FromSeconds(100)
        yield orders_pb2.WatchOrderResponse(order=pending)
        if self.watch_calls == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "server going away")
        done = orders_pb2.Order(order_id=request.order_id, state=orders_pb2.ORDER_STATE_CANCELLED)
        done.update_time.FromSeconds(200)
        yield orders_pb2.WatchOrderResponse(order=done)


async def serve(servicer: FlakyOrders) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    orders_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


ADDRESS = {
    "name": "Ada",
    "line1": "1 Row",
    "city": "London",
    "postal_code": "N1",
    "country_code": "GB",
}


async def place(client: OrdersClient) -> orders_pb2.Order:
    return await client.create_order(
        customer_id="c", items={"MUG-1": 1}, address=ADDRESS, payment_token="tok_visa"
    )


async def test_unavailable_is_retried_with_the_same_generated_request_id() -> None:
    servicer = FlakyOrders(failures=2)
    server, target = await serve(servicer)
    try:
        async with OrdersClient(target, retry=FAST) as client:
            order = await place(client)
    finally:
        await server.stop(None)
    assert len(servicer.request_ids) == 3
    assert len(set(servicer.request_ids)) == 1
    assert servicer.request_ids[0]  # generated, since the caller gave none
    assert order.request_id == servicer.request_ids[0]


async def test_deadline_exceeded_is_retried_for_an_idempotent_call() -> None:
    servicer = FlakyOrders(failures=1, code=grpc.StatusCode.DEADLINE_EXCEEDED)
    server, target = await serve(servicer)
    try:
        async with OrdersClient(target, retry=FAST, timeout=0.5) as client:
            order = await place(client)
    finally:
        await server.stop(None)
    assert len(servicer.request_ids) == 2
    assert servicer.request_ids[0] == servicer.request_ids[1] == order.request_id


async def test_giving_up_raises_the_last_failure_after_max_attempts() -> None:
    servicer = FlakyOrders(failures=100)
    server, target = await serve(servicer)
    try:
        async with OrdersClient(target, retry=FAST) as client:
            with pytest.raises(CallError) as caught:
                await place(client)
    finally:
        await server.stop(None)
    assert len(servicer.request_ids) == FAST.max_attempts
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason is Reason.DEPENDENCY_UNAVAILABLE
    assert caught.value.method == "/orders.v1.OrderService/CreateOrder"


async def test_a_refusal_is_not_retried_and_carries_reason_metadata_and_trace_id() -> None:
    servicer = FlakyOrders(failures=0)
    server, target = await serve(servicer)
    try:
        async with OrdersClient(target, retry=FAST) as client:
            with pytest.raises(CallError) as caught:
                await client.get_order("ord_nope")
    finally:
        await server.stop(None)
    error = caught.value
    assert error.reason is Reason.ORDER_NOT_FOUND
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert error.metadata["order_id"] == "ord_nope"
    assert error.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_a_server_that_starts_late_is_waited_for() -> None:
    servicer = FlakyOrders(failures=0)
    server = grpc.aio.server()
    orders_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    first_wait = asyncio.Event()

    class StartsTheServerOnItsFirstWait(RetryPolicy):
        def backoff(self, attempt: int, error: BaseException | None = None) -> float:
            first_wait.set()
            return super().backoff(attempt, error)

    policy = StartsTheServerOnItsFirstWait(max_attempts=40, initial_backoff=0.05, max_backoff=0.2)
    # gRPC itself waits a second or more before connecting again after a failure.
    channel = open_channel(
        f"127.0.0.1:{port}",
        options=[("grpc.initial_reconnect_backoff_ms", 50), ("grpc.min_reconnect_backoff_ms", 50)],
    )
    try:
        async with OrdersClient(channel, retry=policy) as client:
            placing = asyncio.create_task(place(client))
            await first_wait.wait()  # nothing listened for the first attempt
            await server.start()
            order = await placing
    finally:
        await channel.close()
        await server.stop(None)
    assert servicer.request_ids == [order.request_id]


async def test_a_broken_watch_is_resumed_without_repeating_a_state() -> None:
    servicer = FlakyOrders(failures=0)
    server, target = await serve(servicer)
    try:
        async with OrdersClient(target, retry=FAST) as client:
            states = [o.state async for o in client.watch_order("ord_1")]
    finally:
        await server.stop(None)
    assert servicer.watch_calls == 2
    assert states == [orders_pb2.ORDER_STATE_PENDING, orders_pb2.ORDER_STATE_CANCELLED]


def test_only_idempotent_calls_repeat_after_a_deadline() -> None:
    class Failed(grpc.RpcError):
        def __init__(self, code: grpc.StatusCode) -> None:
            self._code = code

        def code(self) -> grpc.StatusCode:
            return self._code

    policy = RetryPolicy()
    deadline = Failed(grpc.StatusCode.DEADLINE_EXCEEDED)
    unavailable = Failed(grpc.StatusCode.UNAVAILABLE)
    refused = Failed(grpc.StatusCode.FAILED_PRECONDITION)
    assert policy.retries(deadline, idempotent=True)
    assert not policy.retries(deadline, idempotent=False)
    assert policy.retries(unavailable, idempotent=False)
    assert not policy.retries(refused, idempotent=True)


def test_backoff_grows_within_its_ceiling() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0)
    for attempt in range(1, 10):
        ceiling = min(1.0, 0.1 * 2 ** (attempt - 1))
        assert all(0 <= policy.backoff(attempt) <= ceiling for _ in range(50))
