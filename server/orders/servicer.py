"""orders.v1.OrderService: the front door.

Requests are validated synchronously; the work itself runs in the order
workflow, which the orders process reaches through its gateway to Temporal
(gateway.py). Each method hands its work to the room that holds it:

* CreateOrder to placing.py, which starts the workflow and stores the
  accepted order;
* GetOrder, ListOrders and WatchOrder to reads.py: reads come from the
  Postgres projection the workflow keeps current;
* CancelOrder, UpdateShippingAddress and ConfirmDelivery to changing.py.

A caller with the customer-service role acts for the one customer its token
names (`customer_scope`): it places orders for that customer only, lists only
that customer's orders, and any other customer's order is, to it, an order
that does not exist (NOT_FOUND), so that order ids cannot be probed.

What admission control asks of the interceptor is marked on the methods:
CreateOrder may be refused before anything else when the platform is full
(`refused_early_by`), and reads and streams count against their caller's
share (server/orders/admission.py).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog

from clients.errors import Error
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.orders.v1 import orders_pb2_grpc
from server.core.auth import customer_scope
from server.core.grpc_server import answers_serialized, refused_early_by
from server.core.validation import Violations
from server.orders.admission import Admission, AdmissionLimits, caller_key
from server.orders.changing import ChangesOfMind
from server.orders.disclosure import disclosed
from server.orders.placing import OrderPlacing
from server.orders.reads import OrderReads

log = structlog.get_logger(__name__)

T = TypeVar("T")


def _bounded_read(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Counts the call among its caller's reads in progress (server/orders/admission.py)."""

    @functools.wraps(method)
    async def bounded(self: OrderServicer, request: Any, context: Any) -> T:
        with self._admission.read(caller_key()):
            return await method(self, request, context)

    return bounded


def _bounded_stream(
    method: Callable[..., AsyncIterator[T]],
) -> Callable[..., AsyncIterator[T]]:
    """Counts the stream among its caller's open streams while it lasts."""

    @functools.wraps(method)
    async def bounded(self: OrderServicer, request: Any, context: Any) -> AsyncIterator[T]:
        with self._admission.stream(caller_key()):
            async for message in method(self, request, context):
                yield message

    return bounded


class OrderServicer(orders_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        *,
        placing: OrderPlacing,
        reads: OrderReads,
        changes: ChangesOfMind,
        admission: Admission | None = None,
    ) -> None:
        self._placing = placing
        self._reads = reads
        self._changes = changes
        # Without one (tests, tools), everything is admitted.
        self._admission = admission or Admission(AdmissionLimits(enabled=False))

    def _platform_full(self) -> Error | None:
        return self._admission.platform_refusal()

    @refused_early_by(_platform_full)
    async def CreateOrder(
        self, request: pb.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateOrderResponse:
        return await self._placing.create_order(request, context)

    @answers_serialized  # the cached order's answer, serialized once (reads.py)
    @_bounded_read
    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        return await self._reads.get_order(request)

    @answers_serialized  # a ListOrdersResponse framed from the stored orders (listing.py)
    @_bounded_read
    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        return await self._reads.list_orders(request)

    @_bounded_stream
    def WatchOrder(
        self, request: pb.WatchOrderRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchOrderResponse]:
        return self._reads.watch(request.order_id)

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelOrderResponse:
        errors = Violations().require("order_id", request.order_id)
        errors.optional("reason", request.reason, max_length=500, multiline=True)
        errors.raise_if_any()
        if customer_scope() is not None:
            await self._reads.visible(request.order_id)
        order = await self._changes.cancel(request.order_id, request.reason)
        log.info("order cancellation requested", order_id=request.order_id)
        return disclosed(pb.CancelOrderResponse(order=order))

    async def UpdateShippingAddress(
        self, request: pb.UpdateShippingAddressRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateShippingAddressResponse:
        errors = Violations().require("order_id", request.order_id)
        errors.address(
            "shipping_address", request.shipping_address, request.HasField("shipping_address")
        )
        errors.raise_if_any()
        if customer_scope() is not None:
            await self._reads.visible(request.order_id)
        order = await self._changes.change_address(request.order_id, request.shipping_address)
        log.info("shipping address changed", order_id=request.order_id)
        return disclosed(pb.UpdateShippingAddressResponse(order=order))

    async def ConfirmDelivery(
        self, request: pb.ConfirmDeliveryRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConfirmDeliveryResponse:
        Violations().require("order_id", request.order_id).raise_if_any()
        order = await self._changes.confirm_delivery(request.order_id)
        log.info("delivery confirmed", order_id=request.order_id)
        return pb.ConfirmDeliveryResponse(order=order)
