"""ListOrders' answer framed from stored bytes is the ListOrdersResponse the messages make."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from clients.errors import Reason
from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import Identity, Role
from server.core.auth.identity import calling_as, restore
from server.core.grpc_server import ServiceInterceptor, answers_serialized
from server.orders.listing import list_orders_response


def _order(order_id: str, **fields: object) -> pb.Order:
    return pb.Order(order_id=order_id, **fields)  # type: ignore[arg-type]


@pytest.fixture
def customer_service() -> Iterator[None]:
    token = calling_as(Identity("shop", Role.CUSTOMER_SERVICE, customer_id="c1"))
    yield
    restore(token)


def test_frames_of_every_length_parse_to_the_response() -> None:
    # Lengths whose varint takes one, two and three bytes, and an empty order.
    orders = [
        pb.Order(),
        _order("ord_1", state=pb.ORDER_STATE_SHIPPED),
        _order("ord_2", tracking_number="t" * 200),
        _order("ord_3", tracking_number="t" * 20_000),
    ]
    framed = list_orders_response([o.SerializeToString() for o in orders], "next-token")
    expected = pb.ListOrdersResponse(orders=orders, next_page_token="next-token")
    assert pb.ListOrdersResponse.FromString(framed) == expected
    assert framed == expected.SerializeToString()


def test_stored_bytes_and_messages_mix_and_an_empty_page_is_empty() -> None:
    stored, read = _order("ord_1"), _order("ord_2", state=pb.ORDER_STATE_CANCELLING)
    framed = list_orders_response([stored.SerializeToString(), read], "")
    assert pb.ListOrdersResponse.FromString(framed) == pb.ListOrdersResponse(orders=[stored, read])
    assert list_orders_response([], "") == b""


def test_an_operator_gets_the_stored_bytes_as_they_are() -> None:
    # Bytes this release cannot tell apart from a message: passed on untouched.
    stored = _order("ord_1", failure=pb.OrderFailure(reason="X", message="10.0.0.7 said no"))
    raw = stored.SerializeToString() + bytes([0xF8, 0x06, 0x01])  # an unknown field 111
    assert list_orders_response([raw], "") == b"\x0a" + bytes([len(raw)]) + raw


@pytest.mark.usefixtures("customer_service")
def test_a_customer_service_sees_failures_in_the_vocabularys_words() -> None:
    failed = _order(
        "ord_1",
        failure=pb.OrderFailure(reason="PAYMENT_DECLINED", message="gateway 10.0.0.7 said 402"),
    )
    odd = _order("ord_2", failure=pb.OrderFailure(message="Traceback ..."))
    fine = _order("ord_3", state=pb.ORDER_STATE_SHIPPED)
    fine_raw = fine.SerializeToString()
    framed = list_orders_response([failed.SerializeToString(), odd, fine_raw], "")
    page = pb.ListOrdersResponse.FromString(framed)
    assert [(o.failure.reason, o.failure.message) for o in page.orders] == [
        (Reason.PAYMENT_DECLINED.value, Reason.PAYMENT_DECLINED.summary),
        (Reason.INTERNAL.value, Reason.INTERNAL.summary),
        ("", ""),
    ]
    assert framed.endswith(fine_raw)  # nothing to word: its stored bytes


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


@pytest.mark.parametrize("serialized", [True, False])
async def test_the_interceptor_sends_a_marked_methods_bytes_as_they_are(serialized: bool) -> None:
    async def answer(request: object, context: object) -> object:
        return request

    handler = answers_serialized(answer) if serialized else answer

    async def continuation(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            handler,
            pb.ListOrdersRequest.FromString,
            pb.ListOrdersResponse.SerializeToString,
        )

    wrapped = await ServiceInterceptor().intercept_service(
        continuation, _Details(f"/orders.v1.OrderService/Method{serialized}")
    )
    expected = None if serialized else pb.ListOrdersResponse.SerializeToString
    assert wrapped.response_serializer is expected
