"""Only the platform starts or steers an order: a plain Temporal client tries, in vain.

An attacker who reaches Temporal, with no key of the platform's, uses a
plain `temporalio` client (no codec, no seal) against the running stack:
it starts order workflows of its own, sends updates, signals and
cancellations to real orders, and replays a real order's start, copied from
its history, a second time. Each time no money, stock or parcel moves, and
no order changes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

import grpc
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import RawValue, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.shipping.v1 import shipping_pb2
from tests.support.orders import (
    order_request,
    payments_of,
    place,
    rpc_error,
    stock_of,
    stock_sku,
    wait_for,
)
from tests.support.polling import eventually
from tests.support.stack import Stack
from worker.model import Address, Line, OrderInput
from worker.workflows import OrderWorkflow


def plain(client: Client) -> Client:
    """The test server's connection with the SDK's default converter: what anyone can use."""
    return Client(**client.config())


async def shipment_exists(stack: Stack, order_id: str) -> bool:
    code, _ = await rpc_error(
        stack.shipping.GetShipment(shipping_pb2.GetShipmentRequest(order_id=order_id))
    )
    return code != grpc.StatusCode.NOT_FOUND


async def shipment_state(stack: Stack, order_id: str) -> int:
    response = await stack.shipping.GetShipment(shipping_pb2.GetShipmentRequest(order_id=order_id))
    return response.shipment.state


async def handled_since(handle: WorkflowHandle[Any, Any], event_count: int) -> None:
    """Waits until the workflow completed a task after the history's first `event_count` events."""

    async def completed_tasks() -> int:
        history = await handle.fetch_history()
        return sum(
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            for event in history.events[event_count:]
        )

    await eventually(completed_tasks, lambda count: count > 0)


async def failure_type(handle: WorkflowHandle[Any, Any]) -> str | None:
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def stored_order(stack: Stack, order_id: str) -> pb.Order:
    return (await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order_id))).order


async def test_a_forged_order_fails_before_any_step(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    sku = await stock_sku(stack, quantity=100)
    order_id = f"ord_forged{uuid.uuid4().hex[:20]}"
    forged = OrderInput(
        order_id=order_id,
        request_id="forged",
        fingerprint="x",
        customer_id="cust-victim",
        currency_code="USD",
        lines=[Line(sku=sku, quantity=50, unit_price_minor=1)],  # the catalog says 1250
        address=Address("Mallory", "1 Drop St", "Nowhere", "00000", "US"),
        payment_method_id="pm_anything",
    )
    handle = await plain(temporal.client).start_workflow(
        OrderWorkflow.run, forged, id=order_id, task_queue=stack.task_queue
    )
    assert await failure_type(handle) == "UNAUTHENTICATED_PAYLOAD"

    assert await stock_of(stack, sku) == (100, 0)
    assert await payments_of(stack, order_id) == []
    assert not await shipment_exists(stack, order_id)
    code, error = await rpc_error(stack.orders.GetOrder(pb.GetOrderRequest(order_id=order_id)))
    assert code == grpc.StatusCode.NOT_FOUND, error


async def test_forged_updates_signals_and_cancellations_change_nothing(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    sku = await stock_sku(stack, quantity=5)
    order = await place(stack, order_request(sku))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    before = await stored_order(stack, order.order_id)
    payments, shipment = (
        await payments_of(stack, order.order_id),
        await shipment_state(stack, order.order_id),
    )
    handle = plain(temporal.client).get_workflow_handle(order.order_id)

    # An operator-only step with no argument at all: only its seal is missing.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(OrderWorkflow.confirm_delivery)
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "UNAUTHENTICATED"
    # An argument that the platform did not encrypt is refused on its own.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            OrderWorkflow.update_shipping_address,
            Address("Mallory", "1 Drop St", "Nowhere", "00000", "US"),
        )
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "UNAUTHENTICATED_PAYLOAD"
    events = len((await handle.fetch_history()).events)
    await handle.signal("delivery_overdue")
    await handle.cancel()
    await handled_since(handle, events)

    after = await stored_order(stack, order.order_id)
    assert after.state == pb.ORDER_STATE_SHIPPED
    assert after.update_time == before.update_time
    assert after.shipping_address == before.shipping_address
    assert await payments_of(stack, order.order_id) == payments
    assert await shipment_state(stack, order.order_id) == shipment
    # The platform's own confirmation still goes through.
    await stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_DELIVERED,))


async def test_a_cancellation_through_temporal_does_not_stop_the_saga(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    sku = await stock_sku(stack, quantity=5)
    # A slow card: the order is still being charged when the cancellation comes.
    order = await place(stack, order_request(sku, token="tok_slow"))
    await plain(temporal.client).get_workflow_handle(order.order_id).cancel()
    seen = await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED, pb.ORDER_STATE_CANCELLED))
    assert seen[-1].state == pb.ORDER_STATE_SHIPPED
    assert pb.ORDER_STATE_CANCELLING not in [o.state for o in seen]
    assert await stock_of(stack, sku) == (4, 0)
    assert len(await payments_of(stack, order.order_id)) == 1


class CopiedHeaders(Interceptor):
    """Starts workflows with headers copied from another run's history."""

    def __init__(self, headers: Mapping[str, Payload]) -> None:
        self._headers = headers

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        headers = self._headers

        class Copying(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                input.headers = dict(headers)
                return await super().start_workflow(input)

        return Copying(next)


async def test_a_real_start_copied_from_history_cannot_run_again(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    sku = await stock_sku(stack, quantity=5)
    order = await place(stack, order_request(sku))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    await stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_DELIVERED,))
    history = await temporal.client.get_workflow_handle(order.order_id).fetch_history()
    started = history.events[0]
    assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    attributes = started.workflow_execution_started_event_attributes
    encrypted_input = attributes.input.payloads[0]
    copied_headers = dict(attributes.header.fields)
    payments, stock = await payments_of(stack, order.order_id), await stock_of(stack, sku)
    shipment = await shipment_state(stack, order.order_id)
    delivered = await stored_order(stack, order.order_id)

    config = temporal.client.config()
    config["interceptors"] = [CopiedHeaders(copied_headers)]
    replaying = Client(**config)
    # Under another id, the copy is void: its seal and its input name this order.
    elsewhere = await replaying.start_workflow(
        "OrderWorkflow",
        RawValue(encrypted_input),
        id=f"ord_copy{uuid.uuid4().hex[:24]}",
        task_queue=stack.task_queue,
    )
    assert await failure_type(elsewhere) == "UNAUTHENTICATED"
    # Under the order's own id, once its run has ended: the order has its run.
    again = await replaying.start_workflow(
        "OrderWorkflow",
        RawValue(encrypted_input),
        id=order.order_id,
        task_queue=stack.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    assert await failure_type(again) == "UNAUTHENTICATED"

    assert await payments_of(stack, order.order_id) == payments
    assert await stock_of(stack, sku) == stock
    assert await stored_order(stack, order.order_id) == delivered
    assert await shipment_state(stack, order.order_id) == shipment


async def test_an_order_whose_workflow_is_terminated_is_flagged_with_what_it_holds(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    sku = await stock_sku(stack, quantity=5)
    order = await place(stack, order_request(sku))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    [payment] = await payments_of(stack, order.order_id)

    # What Temporal's dev server lets anyone do, and a production one only operators.
    await plain(temporal.client).get_workflow_handle(order.order_id).terminate("by hand")

    flagged = await eventually(
        lambda: stored_order(stack, order.order_id), lambda o: o.attention_required, within=30
    )
    assert flagged.state == pb.ORDER_STATE_SHIPPED
    full = await stack.orders.GetOrder(
        pb.GetOrderRequest(order_id=order.order_id, view=pb.ORDER_VIEW_FULL)
    )
    assert full.progress.workflow_ended_outside_saga == "TERMINATED"
    held = "\n".join(full.progress.holdings)
    assert f"payment {payment.payment_id}: PAYMENT_STATE_CAPTURED 1250 USD" in held
    assert "stock reservation: RESERVATION_STATE_COMMITTED" in held
    assert "shipment shp_" in held
    # Noticed once: later sweeps leave it as it is.
    version_time = flagged.update_time
    await asyncio.sleep(5)  # sweeps run every 2 s on the session's stack
    assert (await stored_order(stack, order.order_id)).update_time == version_time


async def test_an_order_the_saga_finished_is_never_flagged(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    sku = await stock_sku(stack, quantity=5)
    order = await place(stack, order_request(sku, token="tok_chargeDeclined"))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_FAILED,))
    # A terminated order placed after it is flagged: sweeps have run since.
    marker = await place(stack, order_request(sku))
    await wait_for(stack, marker.order_id, (pb.ORDER_STATE_SHIPPED,))
    await plain(temporal.client).get_workflow_handle(marker.order_id).terminate("marker")
    await eventually(
        lambda: stored_order(stack, marker.order_id), lambda o: o.attention_required, within=30
    )
    assert not (await stored_order(stack, order.order_id)).attention_required
