"""A typed async client of orders.v1.OrderService, the platform's front door.

async with OrdersClient("127.0.0.1:50051", caller_credentials(token_file=...)) as orders:
    order = await orders.create_order(
        customer_id="cust-42",
        items={"MUG-1": 2},
        address=postal_address(name="Ada Lovelace", line1="12 Analytical Row",
                               city="London", postal_code="N1 9GU", country_code="GB"),
        payment_token="tok_visa",
    )
    async for update in orders.watch_order(order.order_id):
        print(update.state)
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import cast

from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2, orders_pb2_grpc
from clients.service import ServiceClient

Order = orders_pb2.Order
OrderState = orders_pb2.OrderState

TERMINAL_STATES = frozenset(
    {
        orders_pb2.ORDER_STATE_DELIVERED,
        orders_pb2.ORDER_STATE_CANCELLED,
        orders_pb2.ORDER_STATE_FAILED,
    }
)

LineItems = Mapping[str, int] | Iterable[orders_pb2.LineItemRequest | tuple[str, int]]
Address = address_pb2.PostalAddress | Mapping[str, str]


def postal_address(**fields: str) -> address_pb2.PostalAddress:
    """A PostalAddress from its fields: name, line1, line2, city, region, postal_code,
    country_code."""
    return address_pb2.PostalAddress(**fields)


def line_items(items: LineItems) -> list[orders_pb2.LineItemRequest]:
    """Order lines from {sku: quantity}, (sku, quantity) pairs or LineItemRequests."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return [
        item
        if isinstance(item, orders_pb2.LineItemRequest)
        else orders_pb2.LineItemRequest(sku=item[0], quantity=item[1])
        for item in pairs
    ]


def _address(address: Address) -> address_pb2.PostalAddress:
    return address if isinstance(address, address_pb2.PostalAddress) else postal_address(**address)


def state_name(state: int) -> str:
    """ "SHIPPED" for ORDER_STATE_SHIPPED."""
    return orders_pb2.OrderState.Name(state).removeprefix("ORDER_STATE_")  # type: ignore[arg-type]


class OrdersClient(ServiceClient):
    """Places, reads, follows and changes orders."""

    @functools.cached_property
    def _stub(self) -> orders_pb2_grpc.OrderServiceAsyncStub:
        # The generated stubs type an aio channel's stub as the Async one.
        return cast(
            "orders_pb2_grpc.OrderServiceAsyncStub", orders_pb2_grpc.OrderServiceStub(self.channel)
        )

    async def create_order(
        self,
        *,
        customer_id: str,
        items: LineItems,
        address: Address,
        payment_token: str,
        request_id: str | None = None,
        deadline: float | None = None,
    ) -> Order:
        """Places an order and returns it, PENDING; the rest happens in the background.

        Without a `request_id`, one is made here. Either way every attempt
        sends the same one, so a call repeated after UNAVAILABLE or a deadline
        places one order, whatever became of the earlier attempts.
        """
        request = orders_pb2.CreateOrderRequest(
            request_id=request_id or str(uuid.uuid4()),
            customer_id=customer_id,
            line_items=line_items(items),
            shipping_address=_address(address),
            payment_token=payment_token,
        )
        return (await self.send_create_order(request, deadline=deadline)).order

    async def send_create_order(
        self, request: orders_pb2.CreateOrderRequest, *, deadline: float | None = None
    ) -> orders_pb2.CreateOrderResponse:
        """CreateOrder with a request made by the caller (which must carry its request_id)."""
        if not request.request_id:
            raise ValueError("a CreateOrderRequest needs a request_id: repeats must reuse it")
        return await self._unary(self._stub.CreateOrder, request, deadline=deadline)

    async def get_order(self, order_id: str, *, full: bool = False) -> orders_pb2.GetOrderResponse:
        """The order; with `full`, also what its workflow is doing now (`progress`)."""
        view = orders_pb2.ORDER_VIEW_FULL if full else orders_pb2.ORDER_VIEW_BASIC
        return await self._unary(
            self._stub.GetOrder, orders_pb2.GetOrderRequest(order_id=order_id, view=view)
        )

    async def list_orders(
        self,
        *,
        customer_id: str = "",
        states: Iterable[OrderState.ValueType] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> orders_pb2.ListOrdersResponse:
        """One page of orders, newest first; its `next_page_token` is empty on the last."""
        request = orders_pb2.ListOrdersRequest(
            customer_id=customer_id, states=list(states), page_size=page_size, page_token=page_token
        )
        return await self._unary(self._stub.ListOrders, request)

    async def pages(
        self,
        *,
        customer_id: str = "",
        states: Iterable[OrderState.ValueType] = (),
        page_size: int = 0,
    ) -> AsyncIterator[orders_pb2.ListOrdersResponse]:
        """Every page of orders, fetched as they are consumed."""
        wanted = list(states)
        token = ""
        while True:
            page = await self.list_orders(
                customer_id=customer_id, states=wanted, page_size=page_size, page_token=token
            )
            yield page
            token = page.next_page_token
            if not token:
                return

    async def iter_orders(
        self,
        *,
        customer_id: str = "",
        states: Iterable[OrderState.ValueType] = (),
        page_size: int = 0,
    ) -> AsyncIterator[Order]:
        """Every order, newest first, page after page."""
        async for page in self.pages(customer_id=customer_id, states=states, page_size=page_size):
            for order in page.orders:
                yield order

    async def watch_order(self, order_id: str) -> AsyncIterator[Order]:
        """The order now, then after each change of state, until it ends.

        A stream broken by UNAVAILABLE is opened again; since a new stream
        starts with the order as it is, a state already seen is not repeated.
        """
        last: tuple[int, int] | None = None
        stream = self._stream(
            self._stub.WatchOrder, orders_pb2.WatchOrderRequest(order_id=order_id)
        )
        async for message in stream:
            order = message.order
            seen = (order.state, order.update_time.ToNanoseconds())
            if seen == last:
                continue
            last = seen
            yield order
            if order.state in TERMINAL_STATES:
                return

    async def cancel_order(self, order_id: str, reason: str = "") -> Order:
        """Cancels an order that has not shipped; returns it CANCELLING (or CANCELLED)."""
        request = orders_pb2.CancelOrderRequest(order_id=order_id, reason=reason)
        return (await self._unary(self._stub.CancelOrder, request)).order

    async def confirm_delivery(self, order_id: str) -> Order:
        """Records the carrier's delivery report; returns the order DELIVERED."""
        request = orders_pb2.ConfirmDeliveryRequest(order_id=order_id)
        return (await self._unary(self._stub.ConfirmDelivery, request)).order

    async def update_shipping_address(self, order_id: str, address: Address) -> Order:
        """Sends the order elsewhere; allowed until shipping starts."""
        request = orders_pb2.UpdateShippingAddressRequest(
            order_id=order_id, shipping_address=_address(address)
        )
        return (await self._unary(self._stub.UpdateShippingAddress, request)).order
