"""The shared interceptor's parts that need no server: parsing, naming bad fields, reuse."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import status_pb2

from clients.errors import Error, Reason, with_retry_delay
from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2
from server.core.grpc_server import ServiceInterceptor, fields_holding, parser


def test_fields_holding_names_nested_and_repeated_fields() -> None:
    request = orders_pb2.CreateOrderRequest(
        request_id="r-1",
        customer_id="a\x00b",
        line_items=[
            orders_pb2.LineItemRequest(sku="MUG-1", quantity=1),
            orders_pb2.LineItemRequest(sku="\x00", quantity=1),
        ],
        shipping_address=address_pb2.PostalAddress(name="Ada", line2="\x00"),
    )
    assert list(fields_holding(request, "\x00")) == [
        "customer_id",
        "line_items[1].sku",
        "shipping_address.line2",
    ]


def test_parser_reads_a_valid_request() -> None:
    parse = parser(orders_pb2.GetOrderRequest.FromString)
    raw = orders_pb2.GetOrderRequest(order_id="ord_1").SerializeToString()
    assert parse(raw).order_id == "ord_1"


@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\xff\xfe"])
def test_parser_refuses_bytes_that_are_no_request(raw: bytes) -> None:
    with pytest.raises(Error) as raised:
        parser(orders_pb2.GetOrderRequest.FromString)(raw)
    assert raised.value.reason is Reason.INVALID_ARGUMENT
    assert "orders.v1.GetOrderRequest" in raised.value.message


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def _handler(request: object, context: object) -> object:
    return request


@pytest.mark.parametrize(("reuse", "lookups"), [(True, 1), (False, 3)])
async def test_a_methods_handler_is_wrapped_once_when_reused(reuse: bool, lookups: int) -> None:
    asked = []

    async def continuation(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        asked.append(details.method)
        return grpc.unary_unary_rpc_method_handler(_handler, orders_pb2.GetOrderRequest.FromString)

    interceptor = ServiceInterceptor(reuse_handlers=reuse)
    method = "/orders.v1.OrderService/GetOrder"
    handlers = [
        await interceptor.intercept_service(continuation, _Details(method)) for _ in range(3)
    ]
    assert len(asked) == lookups
    # The interceptor parses requests itself, so grpc hands it the raw bytes.
    assert all(h.request_deserializer is None for h in handlers)


def test_retry_delay_travels_as_retry_info() -> None:
    status = Error(Reason.DEPENDENCY_UNAVAILABLE, "retry").to_status()
    with_retry_delay(status, 1.5)
    decoded = status_pb2.Status.FromString(status.SerializeToString())
    assert [d.type_url.rsplit("/", 1)[1] for d in decoded.details] == [
        "google.rpc.ErrorInfo",
        "google.rpc.RetryInfo",
    ]
