"""Orders, addresses and refusals the booking tests share."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

import grpc
import pytest

from clients.errors import Error, decode
from clients.proto.common.v1 import address_pb2

HOME = address_pb2.PostalAddress(
    name="Ada Lovelace",
    line1="12 Analytical Row",
    city="London",
    postal_code="N1 9GU",
    country_code="GB",
)
OFFICE = address_pb2.PostalAddress(
    name="Ada Lovelace",
    line1="1 Difference Lane",
    line2="Floor 3",
    city="Manchester",
    postal_code="M1 1AA",
    country_code="GB",
)


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex}"


async def refusal(call: Awaitable[object]) -> tuple[grpc.StatusCode, Error]:
    """The status code and decoded error of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    return failed.value.code(), decode(failed.value)
