"""The typed clients against the whole stack, called as an operator would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio

from clients.channels import open_channel
from clients.credentials import caller_credentials
from clients.errors import CallError, Reason
from clients.inventory import InventoryClient, money
from clients.orders import OrdersClient, postal_address
from clients.payments import PaymentsClient
from clients.proto.orders.v1 import orders_pb2
from clients.proto.payments.v1 import payments_pb2
from clients.retry import RetryPolicy
from clients.sync import SyncInventoryClient, SyncOrdersClient
from server.core.auth.identity import Role
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

ADDRESS = postal_address(
    name="Ada Lovelace",
    line1="12 Analytical Row",
    city="London",
    postal_code="N1 9GU",
    country_code="GB",
)


def target(stack: Stack, service: str) -> str:
    return f"127.0.0.1:{stack.ports[service]}"


@pytest_asyncio.fixture
async def orders(stack: Stack) -> AsyncIterator[OrdersClient]:
    async with OrdersClient(target(stack, "orders"), stack.operator) as client:
        yield client


@pytest_asyncio.fixture
async def inventory(stack: Stack) -> AsyncIterator[InventoryClient]:
    async with InventoryClient(target(stack, "inventory"), stack.operator) as client:
        yield client


async def new_sku(inventory: InventoryClient, quantity: int = 10) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    item = await inventory.set_stock(sku, quantity, money(1250, "USD"))
    assert (item.sku, item.quantity) == (sku, quantity)
    return sku


async def place(
    orders: OrdersClient, sku: str, token: str = "tok_visa", customer: str = ""
) -> orders_pb2.Order:
    return await orders.create_order(
        customer_id=customer or f"cust-{uuid.uuid4().hex[:8]}",
        items={sku: 2},
        address=ADDRESS,
        payment_token=token,
    )


async def states_until(orders: OrdersClient, order_id: str, stop: int) -> list[int]:
    seen = []
    async for order in orders.watch_order(order_id):
        seen.append(order.state)
        if order.state == stop:
            break
    return seen


async def test_an_order_from_placing_to_delivery(
    stack: Stack, orders: OrdersClient, inventory: InventoryClient
) -> None:
    sku = await new_sku(inventory)
    order = await place(orders, sku)
    assert order.state == orders_pb2.ORDER_STATE_PENDING
    assert order.request_id  # made by the client
    assert order.total.amount_minor == 2500

    seen = await states_until(orders, order.order_id, orders_pb2.ORDER_STATE_SHIPPED)
    assert seen[-1] == orders_pb2.ORDER_STATE_SHIPPED
    assert seen == sorted(seen)  # the happy path only moves forward

    delivered = await orders.confirm_delivery(order.order_id)
    assert delivered.state == orders_pb2.ORDER_STATE_DELIVERED
    fetched = (await orders.get_order(order.order_id)).order
    assert fetched.state == orders_pb2.ORDER_STATE_DELIVERED
    assert (await inventory.get_stock(sku)).quantity == 8

    async with PaymentsClient(target(stack, "payments"), stack.operator) as payments:
        paid = await payments.list_payments(order.order_id)
    assert [(p.state, p.amount_minor) for p in paid] == [
        (payments_pb2.PAYMENT_STATE_CAPTURED, 2500)
    ]


async def test_cancel_and_update_address_while_the_card_is_slow(
    orders: OrdersClient, inventory: InventoryClient
) -> None:
    sku = await new_sku(inventory)
    order = await place(orders, sku, token="tok_slow")
    moved = await orders.update_shipping_address(
        order.order_id, {**{"name": "Charles Babbage"}, **_fields(ADDRESS)}
    )
    assert moved.shipping_address.name == "Charles Babbage"
    cancelling = await orders.cancel_order(order.order_id, "changed my mind")
    assert cancelling.state in (orders_pb2.ORDER_STATE_CANCELLING, orders_pb2.ORDER_STATE_CANCELLED)
    seen = [o.state async for o in orders.watch_order(order.order_id)]
    assert seen[-1] == orders_pb2.ORDER_STATE_CANCELLED


def _fields(address: Any) -> dict[str, str]:
    return {f.name: v for f, v in address.ListFields() if f.name != "name"}


async def test_listing_pages_through_every_order_of_a_customer(
    orders: OrdersClient, inventory: InventoryClient
) -> None:
    sku = await new_sku(inventory)
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    placed = [await place(orders, sku, customer=customer) for _ in range(3)]
    pages = [page async for page in orders.pages(customer_id=customer, page_size=2)]
    assert [len(page.orders) for page in pages] == [2, 1]
    listed = [o.order_id async for o in orders.iter_orders(customer_id=customer, page_size=1)]
    assert listed == [o.order_id for o in reversed(placed)]  # newest first


class LosesTheFirstAnswer(grpc.aio.UnaryUnaryClientInterceptor):
    """Lets the first call reach the server, then reports UNAVAILABLE as if its answer was lost."""

    def __init__(self) -> None:
        self.calls = 0

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        self.calls += 1
        call = await continuation(client_call_details, request)
        if self.calls == 1:
            await call  # the order is placed
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="connection reset",
            )
        return call


async def test_create_order_repeated_after_a_lost_answer_places_one_order(
    stack: Stack, inventory: InventoryClient
) -> None:
    sku = await new_sku(inventory)
    losing = LosesTheFirstAnswer()
    channel = open_channel(target(stack, "orders"), stack.operator, interceptors=[losing])
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    fast = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)
    try:
        async with OrdersClient(channel, retry=fast) as client:
            order = await place(client, sku, customer=customer)
            listed = (await client.list_orders(customer_id=customer)).orders
    finally:
        await channel.close()
    assert losing.calls == 3  # CreateOrder twice, then ListOrders
    assert [o.order_id for o in listed] == [order.order_id]


async def test_errors_carry_reason_field_violations_and_trace_id(orders: OrdersClient) -> None:
    with pytest.raises(CallError) as missing:
        await orders.get_order("ord_" + "0" * 32)
    assert missing.value.reason is Reason.ORDER_NOT_FOUND
    assert missing.value.code is grpc.StatusCode.NOT_FOUND

    with pytest.raises(CallError) as invalid:
        await orders.create_order(
            customer_id="", items={"NO-SUCH-SKU": 0}, address={}, payment_token="tok_visa"
        )
    error = invalid.value
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in error.violations}
    assert {"customer_id", "shipping_address.name"} <= fields
    assert error.trace_id and len(error.trace_id) == 32  # writes are always traced


async def test_a_token_file_and_a_customer_service_token(stack: Stack, tmp_path: Any) -> None:
    token_file = tmp_path / "operator.token"
    token_file.write_text(stack.credentials_folder.token("operator"))
    async with OrdersClient(
        target(stack, "orders"), caller_credentials(token_file=token_file)
    ) as client:
        await client.list_orders(page_size=1)

    customer = f"cust-{uuid.uuid4().hex[:8]}"
    shop_token = stack.credentials_folder.mint(
        Role.CUSTOMER_SERVICE, subject="shop", customer_id=customer
    )
    async with OrdersClient(target(stack, "orders"), caller_credentials(token=shop_token)) as shop:
        with pytest.raises(CallError) as denied:
            await shop.list_orders(customer_id="someone-else")
        assert denied.value.reason is Reason.PERMISSION_DENIED

    async with OrdersClient(target(stack, "orders")) as anonymous:
        with pytest.raises(CallError) as unauthenticated:
            await anonymous.list_orders()
    assert unauthenticated.value.reason is Reason.UNAUTHENTICATED


def test_the_blocking_facade(stack: Stack) -> None:
    with SyncInventoryClient(target(stack, "inventory"), stack.operator) as inventory:
        sku = f"SKU-{uuid.uuid4().hex[:10]}"
        inventory.set_stock(sku, 5, money(990, "EUR"))
        assert inventory.get_stock(sku).unit_price.currency_code == "EUR"
    with SyncOrdersClient(target(stack, "orders"), stack.operator) as orders:
        order = orders.create_order(
            customer_id="cust-sync", items=[(sku, 1)], address=ADDRESS, payment_token="tok_visa"
        )
        states = []
        for update in orders.watch_order(order.order_id):
            states.append(update.state)
            if update.state == orders_pb2.ORDER_STATE_SHIPPED:
                break  # leaving early closes the stream
        assert states[0] == orders_pb2.ORDER_STATE_PENDING
        assert orders.confirm_delivery(order.order_id).state == orders_pb2.ORDER_STATE_DELIVERED
        with pytest.raises(CallError) as missing:
            orders.get_order("ord_missing")
        assert missing.value.reason is Reason.ORDER_NOT_FOUND
