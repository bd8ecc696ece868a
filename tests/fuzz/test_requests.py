"""Whatever a caller sends, every service answers with a status the contract allows.

Generated requests (every RPC, every field) and raw bytes that are no request
at all: each answer is OK or an error carrying the project's ErrorInfo, never
INTERNAL or UNKNOWN, and the server keeps serving. FUZZ_EXAMPLES sets how many
cases each RPC gets (50 by default; more for a long run).
"""

from __future__ import annotations

import os

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2
from tests.fuzz.answers import call_raw, problems, serving
from tests.fuzz.inprocess import Served
from tests.fuzz.strategies import RPCS, Rpc, requests

_ADDRESS = address_pb2.PostalAddress(
    name="Ada Lovelace", line1="12 Analytical Row", city="London", postal_code="N1 9GU",
    country_code="GB",
)  # fmt: skip

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "50")),
    deadline=None,  # the machine is shared: no case is failed for being slow
    database=None,  # nothing written into the work tree; a failure prints its blob
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _string_fields(descriptor: Descriptor) -> list[FieldDescriptor]:
    return [
        field
        for field in descriptor.fields
        if field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated
    ]


def _invalid_utf8(field: FieldDescriptor) -> bytes:
    """A length-delimited field `field` whose bytes are not UTF-8."""
    tag = (field.number << 3) | 2
    body = b"\xff\xfe\xc3"
    assert tag < 0x80 and len(body) < 0x80
    return bytes([tag, len(body)]) + body


@st.composite
def _malformed(draw: st.DrawFn, rpc: Rpc) -> bytes:
    """Bytes that are probably not a valid request: garbage, cut short, or bad UTF-8."""
    strings = _string_fields(rpc.method.input_type)
    choices = ["garbage", "truncated"] + (["utf8"] if strings else [])
    kind = draw(st.sampled_from(choices))
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "utf8":
        return draw(st.sampled_from(strings).map(_invalid_utf8))
    valid = draw(requests(rpc.method.input_type)).SerializeToString()
    return valid[: draw(st.integers(0, max(len(valid) - 1, 0)))] + draw(st.binary(max_size=3))


@pytest.mark.parametrize("rpc", RPCS, ids=str)
@FUZZ
@given(data=st.data())
async def test_generated_requests_get_well_formed_answers(
    services: dict[str, Served], rpc: Rpc, data: st.DataObject
) -> None:
    request = data.draw(requests(rpc.method.input_type), label="request")
    served = services[rpc.service]
    answer = await call_raw(served.channel, rpc, request.SerializeToString())
    event(answer.code.name)  # --hypothesis-show-statistics: how far requests got
    assert not problems(answer), answer
    assert await serving(served.channel)


@pytest.mark.parametrize("rpc", RPCS, ids=str)
@FUZZ
@given(data=st.data())
async def test_raw_bytes_get_well_formed_answers(
    services: dict[str, Served], rpc: Rpc, data: st.DataObject
) -> None:
    raw = data.draw(_malformed(rpc), label="raw")
    served = services[rpc.service]
    answer = await call_raw(served.channel, rpc, raw)
    event(answer.code.name)
    assert not problems(answer), answer
    assert await serving(served.channel)


@pytest.mark.parametrize("rpc", RPCS, ids=str)
async def test_bytes_that_are_no_request_are_invalid_argument(
    services: dict[str, Served], rpc: Rpc
) -> None:
    fields = _string_fields(rpc.method.input_type)
    cases = {
        "garbage": b"\xff\xff\xff\xff",
        "truncated": b"\x0a\x05ab",  # field 1 announces 5 bytes and brings 2
        **{f"utf8 in {f.name}": _invalid_utf8(f) for f in fields},
    }
    for case, raw in cases.items():
        answer = await call_raw(services[rpc.service].channel, rpc, raw)
        assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, (case, answer)
        assert not problems(answer), (case, answer)


def _cases_with_nul() -> list[tuple[Rpc, str]]:
    return [(rpc, f.name) for rpc in RPCS for f in _string_fields(rpc.method.input_type)]


@pytest.mark.parametrize(("rpc", "field"), _cases_with_nul(), ids=lambda v: str(v))
async def test_nul_in_any_text_field_is_invalid_argument(
    services: dict[str, Served], rpc: Rpc, field: str
) -> None:
    request = GetMessageClass(rpc.method.input_type)()
    setattr(request, field, "a\x00b")
    answer = await call_raw(services[rpc.service].channel, rpc, request.SerializeToString())
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, answer
    assert not problems(answer), answer


async def test_nul_in_an_order_id_names_the_field(services: dict[str, Served]) -> None:
    rpc = next(r for r in RPCS if r.path == "/orders.v1.OrderService/GetOrder")
    request = orders_pb2.GetOrderRequest(order_id="a\x00b")
    answer = await call_raw(services["orders"].channel, rpc, request.SerializeToString())
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT
    assert answer.violations() == ["order_id"]
    info = answer.error_info()
    assert info is not None and info.reason == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "field", ["customer_id", "shipping_address.name", "shipping_address.line2"]
)
async def test_an_order_with_nul_in_its_text_is_refused_at_the_door(
    services: dict[str, Served], field: str
) -> None:
    request = orders_pb2.CreateOrderRequest(
        request_id="nul-at-the-door",
        customer_id="cust-42",
        line_items=[orders_pb2.LineItemRequest(sku="MUG-1", quantity=1)],
        payment_token="tok_visa",
    )
    request.shipping_address.CopyFrom(_ADDRESS)
    owner, _, name = field.rpartition(".")
    setattr(getattr(request, owner) if owner else request, name, "a\x00b")
    rpc = next(r for r in RPCS if r.path == "/orders.v1.OrderService/CreateOrder")
    answer = await call_raw(services["orders"].channel, rpc, request.SerializeToString())
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, answer
    assert field in answer.violations()
