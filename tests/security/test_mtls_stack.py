"""The whole stack on mutual TLS, as `TLS_MODE=mtls make run` starts it: an order goes through.

The front door prices the order over mTLS, and the worker reserves, charges,
commits and books over mTLS, each proving who it is with its certificate
alone (no token); the caller presents an operator's certificate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.testing import WorkflowEnvironment

from clients.channels import CallerCredentials
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.orders.v1 import orders_pb2_grpc
from tests.support.orders import order_request, payments_of, stock_sku, wait_for
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(scope="module")
async def mtls_stack(
    temporal: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path_factory.mktemp("mtls"),
        database_url,
        temporal.client.service_client.config.target_host,
        TLS_MODE="mtls",
        SHIPPING_BOOKING_SECONDS="0.2",
    ) as stack:
        yield stack


async def test_an_order_ships_with_every_hop_on_mtls(mtls_stack: Stack) -> None:
    for name in ("orders", "worker"):
        assert "SERVICE_TOKEN_FILE" not in mtls_stack.security(name)
    # The operator's certificate alone is enough to stock and to order.
    stack = mtls_stack
    sku = await stock_sku(stack, quantity=3)
    order = (await stack.orders.CreateOrder(order_request(sku, 1))).order
    seen = await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,), within=60)
    assert seen[-1].state == pb.ORDER_STATE_SHIPPED
    assert len(await payments_of(stack, order.order_id)) == 1
    certificate_only = stack.channel("orders", stack.unchecked)
    read = await orders_pb2_grpc.OrderServiceStub(certificate_only).GetOrder(
        pb.GetOrderRequest(order_id=order.order_id)
    )
    assert read.order.order_id == order.order_id


@pytest.mark.parametrize("name", ["orders", "payments", "inventory", "shipping"])
async def test_callers_without_a_certificate_are_turned_away(mtls_stack: Stack, name: str) -> None:
    operator = mtls_stack.operator
    without_certificate = CallerCredentials(
        tls=True, root_certificates=operator.root_certificates, token=operator.token
    )
    plaintext = CallerCredentials(token=operator.token)
    for credentials in (without_certificate, plaintext):
        channel = mtls_stack.channel(name, credentials)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
