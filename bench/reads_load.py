"""Read traffic: GetOrder, ListOrders and the health check, 50 in flight on one channel.

The front door's answers are set against the bare server's (bench/bare_server.py),
which returns the very messages the front door returned, from memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.orders.v1 import orders_pb2_grpc

CALL_TIMEOUT = 30.0
LIST_PAGE_SIZE = 10
# The kinds of read, in the order they are measured.
KINDS = ("get_order", "list_orders", "health")


@dataclass(frozen=True)
class Sample:
    """What the reads ask for, and the answers the bare server will give."""

    order_ids: list[str]
    list_request: pb.ListOrdersRequest
    get_response: pb.GetOrderResponse
    list_response: pb.ListOrdersResponse


async def take_sample(
    stub: orders_pb2_grpc.OrderServiceStub, order_ids: list[str], customer_id: str
) -> Sample:
    """Reads one order and one page from the front door, to replay from the bare server."""
    list_request = pb.ListOrdersRequest(customer_id=customer_id, page_size=LIST_PAGE_SIZE)
    return Sample(
        order_ids=order_ids,
        list_request=list_request,
        get_response=await stub.GetOrder(
            pb.GetOrderRequest(order_id=order_ids[0]), timeout=CALL_TIMEOUT
        ),
        list_response=await stub.ListOrders(list_request, timeout=CALL_TIMEOUT),
    )


def read_call(
    kind: str, channel: grpc.aio.Channel, sample: Sample
) -> Callable[[int], Awaitable[None]]:
    """The call a read loop repeats; GetOrder goes round the sampled orders."""
    orders = orders_pb2_grpc.OrderServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    requests = [pb.GetOrderRequest(order_id=order_id) for order_id in sample.order_ids]
    check = health_pb2.HealthCheckRequest()

    async def get_order(index: int) -> None:
        await orders.GetOrder(requests[index % len(requests)], timeout=CALL_TIMEOUT)

    async def list_orders(index: int) -> None:
        await orders.ListOrders(sample.list_request, timeout=CALL_TIMEOUT)

    async def health_check(index: int) -> None:
        await health.Check(check, timeout=CALL_TIMEOUT)

    return {"get_order": get_order, "list_orders": list_orders, "health": health_check}[kind]
