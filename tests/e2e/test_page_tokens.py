"""A ListOrders page_token the server did not make is refused as the caller's mistake."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import grpc
import pytest

from clients.errors import decode
from clients.proto.orders.v1 import orders_pb2 as pb
from tests.support.orders import order_request, place, stock_sku
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def as_token(value: Any) -> str:
    """JSON as the server's own tokens carry it: URL-safe base64 without padding."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_tokens_of_every_other_shape_are_invalid_arguments(stack: Stack) -> None:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    sku = await stock_sku(stack, quantity=5)
    for _ in range(2):
        await place(stack, order_request(sku, customer_id=customer))
    first = await stack.orders.ListOrders(pb.ListOrdersRequest(customer_id=customer, page_size=1))
    # A real token, taken apart: its filter key stays right, so what is
    # refused below is its shape, not its filters.
    token = first.next_page_token
    real = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert set(real) == {"t", "id", "f"}

    shapes: dict[str, Any] = {
        "null": None,
        "list": [real["t"], real["id"], real["f"]],
        "string": "hello",
        "number": 42,
        "true": True,
        "empty object": {},
        "no time": {"id": real["id"], "f": real["f"]},
        "no id": {"t": real["t"], "f": real["f"]},
        "no filters": {"t": real["t"], "id": real["id"]},
        "time as a number": {**real, "t": 1700000000},
        "time as null": {**real, "t": None},
        "time as a list": {**real, "t": [real["t"]]},
        "time not a date": {**real, "t": "yesterday"},
        "time without a zone": {**real, "t": "2024-05-01T12:00:00"},
        "time out of range in UTC": {**real, "t": "0001-01-01T00:00:00+05:00"},
        "id as a number": {**real, "id": 7},
        "id as null": {**real, "id": None},
        "id as an object": {**real, "id": {"a": 1}},
        "filters as a list": {**real, "f": [real["f"]]},
        "not JSON": b"\xff\xfe not json",
        "nested deep": b"[" * 100_000 + b"]" * 100_000,
        "padded far past any token made here": {**real, "pad": "x" * 1000},
    }
    tokens = {name: as_token(value) for name, value in shapes.items()}
    tokens["not base64"] = "a"
    tokens["not ASCII"] = "é"

    log_before = len(stack.process("orders").log)
    answers = {}
    for name, token in tokens.items():
        request = pb.ListOrdersRequest(customer_id=customer, page_token=token)
        try:
            await stack.orders.ListOrders(request)
        except grpc.aio.AioRpcError as error:
            answers[name] = (error.code(), [v.field for v in decode(error).violations])
        else:
            answers[name] = (grpc.StatusCode.OK, [])
    expected = (grpc.StatusCode.INVALID_ARGUMENT, ["page_token"])
    wrong = {name: answer for name, answer in answers.items() if answer != expected}
    assert not wrong, "\n".join(
        f"{name}: {code.name} {fields}" for name, (code, fields) in wrong.items()
    )
    log = stack.process("orders").log[log_before:]
    assert "Traceback" not in log, log[-2000:]

    # The real token still pages on.
    second = await stack.orders.ListOrders(
        pb.ListOrdersRequest(customer_id=customer, page_size=1, page_token=first.next_page_token)
    )
    assert [o.order_id for o in second.orders] != [o.order_id for o in first.orders]
