"""ListOrders' answer, framed from the orders' stored bytes.

On the wire, a repeated message field is each element's tag, its length and
its bytes, one element after the other. The projection stores every order
serialized (migration 0002), so a page is sent as those bytes, framed: no
order is parsed, copied into a response and serialized again. An order is
parsed only where what its caller sees is not what is stored: the repository
reads it from its row when changes were accepted since its workflow wrote it,
or when it is stored as JSON (`OrderRepository.page`); a customer service is
shown a failure in the vocabulary's words (disclosure.py).

The servicer answers with these bytes, which grpc sends as they are
(`answers_serialized`, server/core/grpc_server.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import customer_scope
from server.orders.disclosure import reword_failure


def _tag(field: str) -> bytes:
    """The one-byte key of a length-delimited field of ListOrdersResponse."""
    number = pb.ListOrdersResponse.DESCRIPTOR.fields_by_name[field].number
    assert number < 16, "a key of one byte holds field numbers up to 15"
    return bytes([number << 3 | 2])  # wire type 2: length-delimited


_ORDERS = _tag("orders")
_NEXT_PAGE_TOKEN = _tag("next_page_token")


def list_orders_response(orders: Iterable[bytes | pb.Order], next_page_token: str) -> bytes:
    """The serialized ListOrdersResponse of a page, as its caller may see it.

    Each order is its stored bytes or a message (as `OrderRepository.page`
    returns them). The bytes parse to the message that `disclosed` makes of
    `ListOrdersResponse(orders=..., next_page_token=...)`.
    """
    scoped = customer_scope() is not None
    parts: list[bytes] = []
    for order in orders:
        if scoped:
            raw = _as_a_customer_sees_it(order)
        elif isinstance(order, bytes):
            raw = order
        else:
            raw = order.SerializeToString()
        parts += (_ORDERS, _varint(len(raw)), raw)
    if next_page_token:
        token = next_page_token.encode()
        parts += (_NEXT_PAGE_TOKEN, _varint(len(token)), token)
    return b"".join(parts)


def _as_a_customer_sees_it(order: bytes | pb.Order) -> bytes:
    """`order` serialized with its failure, if any, in the vocabulary's words."""
    message = pb.Order.FromString(order) if isinstance(order, bytes) else order
    if reword_failure(message) or not isinstance(order, bytes):
        return message.SerializeToString()
    return order  # no failure to word: the stored bytes as they are


def _varint(value: int) -> bytes:
    """`value` (not negative) as a protobuf varint: 7 bits a byte, low bits first."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
