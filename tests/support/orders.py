"""Helpers that drive the public API the way a caller would."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from clients.errors import Error, decode
from clients.proto.common.v1 import address_pb2, money_pb2
from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.orders.v1 import orders_pb2
from clients.proto.payments.v1 import payments_pb2
from tests.support.stack import Stack
from worker.model import TERMINAL_STATES


def address(country_code: str = "US", name: str = "Ada Lovelace") -> address_pb2.PostalAddress:
    return address_pb2.PostalAddress(
        name=name,
        line1="12 Analytical Row",
        city="London",
        postal_code="N1 9GU",
        country_code=country_code,
    )


def new_sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10]}"


async def stock_sku(stack: Stack, quantity: int, price_minor: int = 1250, sku: str = "") -> str:
    sku = sku or new_sku()
    await stack.inventory.SetStock(
        inventory_pb2.SetStockRequest(
            sku=sku,
            quantity=quantity,
            unit_price=money_pb2.Money(currency_code="USD", amount_minor=price_minor),
        )
    )
    return sku


def order_request(
    sku: str,
    quantity: int = 1,
    *,
    token: str = "tok_visa",
    country: str = "US",
    request_id: str = "",
    customer_id: str = "cust-1",
) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        request_id=request_id or str(uuid.uuid4()),
        customer_id=customer_id,
        line_items=[orders_pb2.LineItemRequest(sku=sku, quantity=quantity)],
        shipping_address=address(country),
        payment_token=token,
    )


async def place(stack: Stack, request: orders_pb2.CreateOrderRequest) -> orders_pb2.Order:
    return (await stack.orders.CreateOrder(request)).order


async def wait_for(
    stack: Stack, order_id: str, states: tuple[int, ...] = TERMINAL_STATES, within: float = 60.0
) -> list[orders_pb2.Order]:
    """Watches the order until it reaches one of `states`; returns what was seen."""
    seen: list[orders_pb2.Order] = []

    async def watch() -> None:
        async for message in stack.orders.WatchOrder(
            orders_pb2.WatchOrderRequest(order_id=order_id)
        ):
            seen.append(message.order)
            if message.order.state in states:
                return
        raise AssertionError(f"stream ended before {states}: {[o.state for o in seen]}")

    await asyncio.wait_for(watch(), within)
    return seen


async def stock_of(stack: Stack, sku: str) -> tuple[int, int]:
    """(available, reserved) units of a SKU."""
    response = await stack.inventory.GetStock(inventory_pb2.GetStockRequest(sku=sku))
    return response.quantity, response.reserved_quantity


async def payments_of(stack: Stack, order_id: str) -> list[payments_pb2.Payment]:
    response = await stack.payments.ListPayments(
        payments_pb2.ListPaymentsRequest(order_id=order_id)
    )
    return list(response.payments)


async def rpc_error(call: object) -> tuple[grpc.StatusCode, Error]:
    """Awaits a call expected to fail; returns its code and decoded error."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code(), decode(error)
    raise AssertionError("the call succeeded")


def state_names(orders: list[orders_pb2.Order]) -> list[str]:
    return [orders_pb2.OrderState.Name(o.state) for o in orders]
