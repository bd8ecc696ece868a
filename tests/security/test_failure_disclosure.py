"""A customer service is told why an order failed in the vocabulary's words; an operator, in full.

The workflow keeps a failure's own text: a downstream service's message, or a
connection error that names the platform's hosts and ports. The full view
once passed it on to customer services word for word.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from clients.errors import Reason
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.orders.v1 import orders_pb2_grpc
from server.core.auth import Role
from tests.support.orders import order_request, stock_sku, wait_for
from tests.support.stack import running_stack

pytestmark = pytest.mark.e2e


async def failing_step(
    orders: orders_pb2_grpc.OrderServiceStub, order_id: str, within: float = 30.0
) -> pb.OrderProgress:
    """The order's progress once a step has failed and is being tried again."""
    request = pb.GetOrderRequest(order_id=order_id, view=pb.ORDER_VIEW_FULL)
    async with asyncio.timeout(within):
        while True:
            progress = (await orders.GetOrder(request)).progress
            if progress.current_step_attempt >= 2 and progress.last_attempt_failure:
                return progress
            await asyncio.sleep(0.2)


async def test_a_customer_sees_failure_reasons_and_an_operator_the_detail(
    temporal: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> None:
    async with running_stack(
        tmp_path, database_url, temporal.client.service_client.config.target_host
    ) as stack:
        customer = f"cust-{uuid.uuid4().hex[:8]}"
        as_customer = stack.as_role(Role.CUSTOMER_SERVICE, customer_id=customer).orders
        sku = await stock_sku(stack, quantity=5)

        # A declined card: the order fails with the payment service's own words.
        declined = await as_customer.CreateOrder(
            order_request(sku, token="tok_chargeDeclined", customer_id=customer)
        )
        order_id = declined.order.order_id
        failed = (await wait_for(stack, order_id, (pb.ORDER_STATE_FAILED,)))[-1]
        assert failed.failure.reason == Reason.PAYMENT_DECLINED
        assert failed.failure.message != Reason.PAYMENT_DECLINED.summary
        read = await as_customer.GetOrder(pb.GetOrderRequest(order_id=order_id))
        listed = await as_customer.ListOrders(pb.ListOrdersRequest())
        for order in (read.order, *listed.orders):
            assert (order.failure.reason, order.failure.message) == (
                Reason.PAYMENT_DECLINED,
                Reason.PAYMENT_DECLINED.summary,
            )

        # The carrier away: booking the shipment fails, and is tried again and again.
        stack.process("shipping").stop()
        stuck = await as_customer.CreateOrder(order_request(sku, customer_id=customer))
        order_id = stuck.order.order_id
        detail = await failing_step(stack.orders, order_id)
        assert detail.last_attempt_failure != Reason.DEPENDENCY_UNAVAILABLE.summary
        seen = (
            await as_customer.GetOrder(
                pb.GetOrderRequest(order_id=order_id, view=pb.ORDER_VIEW_FULL)
            )
        ).progress
        assert seen.current_step == detail.current_step
        assert seen.current_step_attempt >= 2
        assert seen.last_attempt_failure == Reason.DEPENDENCY_UNAVAILABLE.summary
