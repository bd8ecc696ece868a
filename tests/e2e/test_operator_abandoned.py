"""The operators' API on an order whose workflow was terminated from outside.

On the session's stack, whose front door looks for such orders every 2 s
(server/orders/abandoned.py): the order is flagged, the detail says how its
workflow ended and what it holds, the actions that need a running workflow
are refused with WORKFLOW_ENDED (and not recorded), and resolving it clears
the flag and marks the record of its end resolved.
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from clients.errors import Reason
from clients.proto.operator.v1 import operator_pb2 as op
from clients.proto.operator.v1 import operator_pb2_grpc
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.payments.v1 import payments_pb2
from tests.support.orders import order_request, place, rpc_error, stock_sku, wait_for
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def test_a_terminated_order_is_shown_refused_and_resolved(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    ops = operator_pb2_grpc.OperatorServiceStub(stack.channel("orders"))
    who = f"cust-{uuid.uuid4().hex[:8]}"
    sku = await stock_sku(stack, quantity=5)
    order = await place(stack, order_request(sku, customer_id=who))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    await temporal.client.get_workflow_handle(order.order_id).terminate("by hand")

    async def flagged() -> list[str]:
        found = await ops.SearchOrders(
            op.SearchOrdersRequest(customer_id=who, attention_required_only=True)
        )
        return [o.order_id for o in found.orders]

    await eventually(flagged, lambda found: found == [order.order_id], within=30, every=0.2)
    detail = await ops.GetOrderDetail(op.GetOrderDetailRequest(order_id=order.order_id))
    assert detail.workflow_status == op.WORKFLOW_STATUS_TERMINATED
    assert detail.HasField("workflow_close_time")
    assert detail.progress.workflow_ended_outside_saga == "TERMINATED"
    assert [p.state for p in detail.payments] == [payments_pb2.PAYMENT_STATE_CAPTURED]

    for call in (
        ops.RetryStep(
            op.RetryStepRequest(request_id=str(uuid.uuid4()), order_id=order.order_id, note="n")
        ),
        ops.CancelAndCompensate(
            op.CancelAndCompensateRequest(
                request_id=str(uuid.uuid4()), order_id=order.order_id, note="n"
            )
        ),
    ):
        code, error = await rpc_error(call)
        assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.WORKFLOW_ENDED)

    resolved = await ops.MarkResolved(
        op.MarkResolvedRequest(
            request_id=str(uuid.uuid4()),
            order_id=order.order_id,
            note="refunded and cancelled the shipment by hand",
        )
    )
    assert resolved.action.result == (
        "cleared attention_required; its workflow's end (TERMINATED) is marked resolved"
    )
    assert not resolved.order.attention_required
    assert await flagged() == []
    after = await ops.GetOrderDetail(op.GetOrderDetailRequest(order_id=order.order_id))
    assert [a.kind for a in after.actions] == [op.OPERATOR_ACTION_KIND_MARK_RESOLVED]
