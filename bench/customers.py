"""Customers who call the front door themselves, each with a token of its own.

The callers of the overload scenario and of the changes of mind. Each
customer calls with a customer-service token for itself, as a shop's service
acting for it would, so admission control counts each one's orders, rate and
WatchOrder streams apart (under the operator's token every stream would count
against one caller's limit). Calls go through the raw stub, once each: a
refusal is recorded as it came, never retried, so the figures show every one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bench.orders_load import CALL_TIMEOUT, SHIP_TIMEOUT, OrderNotShipped
from bench.stack import Platform
from clients.channels import CallerCredentials, open_channel
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.orders.v1 import orders_pb2_grpc
from server.core.auth.identity import Role
from worker.model import SHIPPED_STATES, TERMINAL_STATES

Response = TypeVar("Response")
# What a customer's calls carry: its token.
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Answer:
    """One call: how it ended and how long it took."""

    # "OK", or the name of the status code.
    code: str
    # The ErrorInfo reason of a refusal ("-" when its status carries none).
    reason: str
    # The admission rule that refused it (ErrorInfo metadata `rule`), if any.
    rule: str
    seconds: float
    # The order a CreateOrder placed.
    order_id: str = ""

    @property
    def kind(self) -> str:
        """How the answer is counted: OK, or CODE/REASON."""
        return "OK" if self.code == "OK" else f"{self.code}/{self.reason}"


def tokens(platform: Platform, customer_id: str) -> Metadata:
    """The metadata of the customer's calls: a customer-service token for it alone."""
    token = platform.credentials.mint(
        Role.CUSTOMER_SERVICE, subject=f"shop-of-{customer_id}", customer_id=customer_id
    )
    return (("authorization", f"Bearer {token}"),)


def _details(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    """The refusal's ErrorInfo reason ("-" without one) and its `rule` metadata."""
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        return "-", ""
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason or "-", info.metadata.get("rule", "")
    return "-", ""


class Customers:
    """The customers named, each with its token, and one channel to the front door."""

    def __init__(self, target: str, metadata: dict[str, Metadata]) -> None:
        self.target = target
        self._metadata = metadata
        # No token on the channel: each call carries its customer's.
        self._channel = open_channel(target, CallerCredentials(), traced=False)
        self._orders = orders_pb2_grpc.OrderServiceStub(self._channel)

    @classmethod
    def of(cls, platform: Platform, ids: list[str]) -> Customers:
        """The customers `ids` of the platform's front door, with tokens signed for this run."""
        return cls(
            platform.target("orders"), {customer: tokens(platform, customer) for customer in ids}
        )

    def metadata(self, customer_id: str) -> Metadata:
        """What the customer's calls carry: its token."""
        return self._metadata[customer_id]

    @property
    def orders(self) -> orders_pb2_grpc.OrderServiceStub:
        """The front door's stub; its calls go through `call` and `watch`."""
        return self._orders

    async def call(
        self, customer_id: str, method: Callable[..., Awaitable[Response]], request: Any
    ) -> tuple[Answer, Response | None]:
        """One unary call of `orders`, once, as the customer: its answer, and its response if OK."""
        started = time.perf_counter()
        try:
            response = await method(
                request, timeout=CALL_TIMEOUT, metadata=self._metadata[customer_id]
            )
        except grpc.aio.AioRpcError as error:
            reason, rule = _details(error)
            return Answer(error.code().name, reason, rule, time.perf_counter() - started), None
        return Answer("OK", "", "", time.perf_counter() - started), response

    async def create(self, request: pb.CreateOrderRequest) -> Answer:
        """CreateOrder once, as the request's customer."""
        answer, response = await self.call(request.customer_id, self._orders.CreateOrder, request)
        return answer if response is None else replace(answer, order_id=response.order.order_id)

    def watch(self, customer_id: str, order_id: str) -> grpc.aio.UnaryStreamCall:
        """WatchOrder as the customer: the order now, then after every change of state."""
        return self._orders.WatchOrder(
            pb.WatchOrderRequest(order_id=order_id),
            timeout=SHIP_TIMEOUT,
            metadata=self._metadata[customer_id],
        )

    async def until_shipped(self, customer_id: str, order_id: str) -> float:
        """Watches the order until it has shipped; returns when (perf_counter) it was seen so."""
        stream = self.watch(customer_id, order_id)
        async for message in stream:
            state = message.order.state
            if state in SHIPPED_STATES:
                stream.cancel()
                return time.perf_counter()
            if state in TERMINAL_STATES:
                stream.cancel()
                raise OrderNotShipped(f"{order_id} ended {pb.OrderState.Name(state)}")
        raise OrderNotShipped(f"the watch of {order_id} ended before the order shipped")

    async def close(self) -> None:
        await self._channel.close()
