"""Which order a request to the front door is about, for its span and log lines."""

from __future__ import annotations

from typing import Any

from clients.proto.orders.v1 import orders_pb2
from server.core.grpc_server import order_id_field


def order_id_of(request: Any) -> str:
    """The order a request is about; a CreateOrder request's is derived from its request_id."""
    if isinstance(request, orders_pb2.CreateOrderRequest):
        from server.orders.placing import order_id_for

        if not request.request_id:
            return ""
        return order_id_for(request.customer_id, request.request_id)
    return order_id_field(request)
