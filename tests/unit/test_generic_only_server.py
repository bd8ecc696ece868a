"""The services' servers find every method through generic handlers (server/core/grpc_server.py).

grpc.aio waits on a future per registered method, all of them again on every
call; the generated `add_*Servicer_to_server` functions register each method
and add a generic handler too. The server keeps only the generic handler, so
it must serve every method of every service the platform adds.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from clients.channels import open_channel
from clients.proto.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from clients.proto.operator.v1 import operator_pb2, operator_pb2_grpc
from clients.proto.orders.v1 import orders_pb2, orders_pb2_grpc
from clients.proto.payments.v1 import payments_pb2, payments_pb2_grpc
from clients.proto.shipping.v1 import shipping_pb2, shipping_pb2_grpc
from server.core.grpc_server import _GenericOnlyServer, create_server


class _Recording(grpc.aio.Server):
    """Records what a generated function adds to a server."""

    def __init__(self) -> None:
        self.generic: list[grpc.GenericRpcHandler] = []
        self.registered: list[str] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service_name: str, handlers: Any) -> None:
        self.registered.append(service_name)

    def add_insecure_port(self, address: str) -> int:
        raise NotImplementedError

    def add_secure_port(self, address: str, server_credentials: Any) -> int:
        raise NotImplementedError

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self, grace: float | None) -> None:
        raise NotImplementedError

    async def wait_for_termination(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        raise NotImplementedError


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


# Every service the platform serves: its messages' module, its stubs' module, its name.
SERVICES = [
    (orders_pb2, orders_pb2_grpc, "OrderService"),
    (operator_pb2, operator_pb2_grpc, "OperatorService"),
    (payments_pb2, payments_pb2_grpc, "PaymentService"),
    (inventory_pb2, inventory_pb2_grpc, "InventoryService"),
    (shipping_pb2, shipping_pb2_grpc, "ShippingService"),
    (health_pb2, health_pb2_grpc, "Health"),
    (reflection_pb2, reflection_pb2_grpc, "ServerReflection"),
]


@pytest.mark.parametrize(("messages", "stubs", "name"), SERVICES, ids=[n for _, _, n in SERVICES])
def test_every_method_is_served_by_a_generic_handler_and_none_is_registered(
    messages: Any, stubs: Any, name: str
) -> None:
    recording = _Recording()
    add = getattr(stubs, f"add_{name}Servicer_to_server")
    add(getattr(stubs, f"{name}Servicer")(), _GenericOnlyServer(recording))

    assert recording.registered == []
    service: ServiceDescriptor = messages.DESCRIPTOR.services_by_name[name]
    for method in service.methods:
        path = f"/{service.full_name}/{method.name}"
        found = [h.service(_Details(path)) for h in recording.generic]
        assert any(handler is not None for handler in found), path


class _Orders(orders_pb2_grpc.OrderServiceServicer):
    async def GetOrder(self, request: Any, context: Any) -> orders_pb2.GetOrderResponse:
        return orders_pb2.GetOrderResponse(order=orders_pb2.Order(order_id=request.order_id))


async def test_a_server_made_by_create_server_answers_through_the_generic_handler() -> None:
    server, port, _ = create_server(
        "127.0.0.1:0", service_names=["orders.v1.OrderService"], reflection_on=True
    )
    orders_pb2_grpc.add_OrderServiceServicer_to_server(_Orders(), server)
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}", traced=False)
    try:
        stub = orders_pb2_grpc.OrderServiceStub(channel)
        answer = await stub.GetOrder(orders_pb2.GetOrderRequest(order_id="ord_1"), timeout=5)
        assert answer.order.order_id == "ord_1"
        unknown = channel.unary_unary("/orders.v1.OrderService/NoSuchMethod")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await unknown(b"", timeout=5)
        assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        await channel.close()
        await server.stop(None)
