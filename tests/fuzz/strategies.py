"""Every RPC of the four services, and hypothesis strategies for their requests.

Requests are built from the message descriptors alone, so a field added to a
contract is fuzzed without touching this file: text with NUL and other control
characters, integers at and past their limits, enum numbers nobody declared,
nested and repeated messages. Values that pass validation (a SKU, a card
token, codes) are mixed in, and the RPCs whose requests a random draw almost
never gets right also get a valid request with a few fields changed, so that
generated requests get past the checks and reach the database and Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from clients.proto.common.v1 import address_pb2, money_pb2
from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.orders.v1 import orders_pb2
from clients.proto.payments.v1 import payments_pb2
from clients.proto.shipping.v1 import shipping_pb2

SERVICES = {
    "payments": payments_pb2.DESCRIPTOR.services_by_name["PaymentService"],
    "inventory": inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"],
    "shipping": shipping_pb2.DESCRIPTOR.services_by_name["ShippingService"],
    "orders": orders_pb2.DESCRIPTOR.services_by_name["OrderService"],
}


@dataclass(frozen=True)
class Rpc:
    service: str  # the key in SERVICES, e.g. "payments"
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def streams(self) -> bool:
        return bool(self.method.server_streaming)

    def __str__(self) -> str:
        return f"{self.method.containing_service.name}.{self.method.name}"


RPCS = [Rpc(name, method) for name, service in SERVICES.items() for method in service.methods]

# Values that pass the services' checks, so that some requests reach SQL and Temporal.
_PLAUSIBLE = [
    "MUG-1",
    "SKU-1",
    "ord_0123456789abcdef0123456789abcdef",
    "cust-42",
    "12 Analytical Row",
    "N1 9GU",
]
# ...and for fields whose name says what they hold, mostly values of that kind.
_HINTS = {
    "country_code": ["GB", "us", "ZZ", "G", "GBR"],
    "currency_code": ["USD", "eur", "US", "XXXX"],
    "payment_token": ["tok_visa", "tok_chargeDeclined", "tok_transient", "tok_unknown"],
}
_ODD = ["", " ", "a\x00b", "\x00", "line\nbreak", "\u202etext", "é" * 129, "x" * 201]
_TEXT = st.one_of(
    st.sampled_from(_PLAUSIBLE),
    st.sampled_from(_ODD),
    # Any code point but surrogates, which UTF-8 (and so protobuf) cannot carry.
    st.text(st.characters(codec="utf-8"), max_size=80),
    st.text(st.sampled_from("\x00\x01\x1f\x7f\x85 aZ9-_.\n"), max_size=12),
)


def _text(field: FieldDescriptor) -> st.SearchStrategy[str]:
    hints = _HINTS.get(field.name)
    return st.one_of(st.sampled_from(hints), _TEXT) if hints else _TEXT


def _integers(bits: int, signed: bool) -> st.SearchStrategy[int]:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    edges = [v for v in (low, high, -1, 0, 1, 100, 10**12 + 1) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_DOUBLE: st.floats(),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
    FieldDescriptor.TYPE_INT32: _integers(32, True),
    FieldDescriptor.TYPE_SINT32: _integers(32, True),
    FieldDescriptor.TYPE_SFIXED32: _integers(32, True),
    FieldDescriptor.TYPE_INT64: _integers(64, True),
    FieldDescriptor.TYPE_SINT64: _integers(64, True),
    FieldDescriptor.TYPE_SFIXED64: _integers(64, True),
    FieldDescriptor.TYPE_UINT32: _integers(32, False),
    FieldDescriptor.TYPE_FIXED32: _integers(32, False),
    FieldDescriptor.TYPE_UINT64: _integers(64, False),
    FieldDescriptor.TYPE_FIXED64: _integers(64, False),
}


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        return messages(field.message_type, depth + 1)
    if field.type == FieldDescriptor.TYPE_STRING:
        return _text(field)
    if field.enum_type is not None:
        declared = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(declared), _integers(32, True))
    return _SCALARS[field.type]


# Most fields are set, so that requests often get past "is required"...
_USUALLY = st.integers(0, 4).map(bool)
# ...and a valid request gets a few of its fields changed.
_SOMETIMES = st.integers(0, 3).map(lambda n: n == 0)


@st.composite
def _message(
    draw: st.DrawFn, descriptor: Descriptor, depth: int, set_field: st.SearchStrategy[bool]
) -> Message:
    message = GetMessageClass(descriptor)()
    for field in descriptor.fields:
        # Deep down, fields stay unset: nesting is bounded, like any real request.
        if depth > 3 or not draw(set_field):
            continue
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields
            entries = draw(
                st.dictionaries(_value(key_field, depth), _value(value_field, depth), max_size=3)
            )
            for key, item in entries.items():
                if isinstance(item, Message):
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif field.is_repeated:
            items = draw(st.lists(_value(field, depth), max_size=4))
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in items:
                    target.add().CopyFrom(item)
            else:
                target.extend(items)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(draw(_value(field, depth)))
        else:
            setattr(message, field.name, draw(_value(field, depth)))
    return message


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`'s type, any field set or not, nested ones included."""
    return _message(descriptor, depth, _USUALLY)


_ADDRESS = address_pb2.PostalAddress(
    name="Ada Lovelace", line1="12 Analytical Row", city="London", postal_code="N1 9GU",
    country_code="GB",
)  # fmt: skip
_USD = money_pb2.Money(currency_code="USD", amount_minor=1250)
# Valid requests of the RPCs whose requests a random draw almost never gets right.
_VALID: list[Message] = [
    payments_pb2.ChargeRequest(
        idempotency_key="ord_0123456789abcdef0123456789abcdef",
        order_id="ord_0123456789abcdef0123456789abcdef",
        amount=_USD,
        payment_token="tok_visa",
    ),
    inventory_pb2.SetStockRequest(sku="MUG-1", quantity=100, unit_price=_USD),
    inventory_pb2.ReserveStockRequest(
        order_id="ord_0123456789abcdef0123456789abcdef",
        lines=[inventory_pb2.ReservationLine(sku="MUG-1", quantity=1)],
    ),
    shipping_pb2.CreateShipmentRequest(
        order_id="ord_0123456789abcdef0123456789abcdef", address=_ADDRESS, item_count=1
    ),
    shipping_pb2.RebookShipmentRequest(
        order_id="ord_0123456789abcdef0123456789abcdef", address=_ADDRESS, item_count=1
    ),
    orders_pb2.CreateOrderRequest(
        request_id="fuzz-1",
        customer_id="cust-42",
        line_items=[orders_pb2.LineItemRequest(sku="MUG-1", quantity=1)],
        shipping_address=_ADDRESS,
        payment_token="tok_visa",
    ),
    orders_pb2.UpdateShippingAddressRequest(
        order_id="ord_0123456789abcdef0123456789abcdef", shipping_address=_ADDRESS
    ),
]
_VALID_BY_TYPE = {message.DESCRIPTOR.full_name: message for message in _VALID}


def _changed(valid: Message, change: Message) -> Message:
    request = type(valid)()
    request.CopyFrom(valid)
    request.MergeFrom(change)
    return request


def requests(descriptor: Descriptor) -> st.SearchStrategy[Message]:
    """Requests of an RPC: any message of its type, or a valid one with a few fields changed."""
    valid = _VALID_BY_TYPE.get(descriptor.full_name)
    if valid is None:
        return messages(descriptor)
    changes = _message(descriptor, 0, _SOMETIMES)
    return st.one_of(messages(descriptor), changes.map(lambda change: _changed(valid, change)))
