"""An error answer stays small whatever the caller sent.

A status travels in the trailers (`grpc-message`, `grpc-status-details-bin`),
and gRPC refuses trailers past 16 KB: a refusal that echoed a caller's input
at full length reached the caller as RESOURCE_EXHAUSTED instead of the
INVALID_ARGUMENT it was.
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from clients.errors import Reason, decode
from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import Role
from tests.support.orders import order_request, stock_sku
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

# gRPC's default soft limit for a call's metadata: past it, calls start to fail.
SOFT_LIMIT = 8 * 1024


async def refusal(call: object) -> grpc.aio.AioRpcError:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError("the call succeeded")


def trailer_bytes(error: grpc.aio.AioRpcError) -> int:
    trailers = error.trailing_metadata() or ()
    return sum(len(key) + len(value) for key, value in trailers) + len(error.details() or "")


async def test_a_hundred_unknown_long_skus_are_refused_as_invalid(stack: Stack) -> None:
    request = order_request(await stock_sku(stack, quantity=1))
    del request.line_items[:]
    run = uuid.uuid4().hex[:8]
    request.line_items.extend(
        pb.LineItemRequest(sku=f"{run}-{i:03d}".ljust(64, "x"), quantity=1) for i in range(100)
    )

    error = await refusal(stack.orders.CreateOrder(request))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    decoded = decode(error)
    assert decoded.reason is Reason.UNKNOWN_SKU
    assert decoded.violations
    assert all(v.field.startswith("line_items[") for v in decoded.violations)
    # Not all hundred fit: the answer says how many were left out.
    assert "omitted" in decoded.metadata
    assert trailer_bytes(error) < SOFT_LIMIT


@pytest.mark.parametrize("method", ["CreateOrder", "ListOrders"])
async def test_a_huge_customer_id_is_refused_as_invalid_not_echoed(
    stack: Stack, method: str
) -> None:
    mine = f"cust-{uuid.uuid4().hex[:8]}"
    as_shop = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=mine).orders
    huge = "c" * 20_000
    if method == "CreateOrder":
        request = order_request(await stock_sku(stack, quantity=1), customer_id=huge)
        call = as_shop.CreateOrder(request)
    else:
        call = as_shop.ListOrders(pb.ListOrdersRequest(customer_id=huge))

    error = await refusal(call)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    decoded = decode(error)
    assert [v.field for v in decoded.violations] == ["customer_id"]
    assert trailer_bytes(error) < SOFT_LIMIT
