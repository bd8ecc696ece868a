"""A workflow task lost after its local activities took effect: nothing it did is left behind.

Local activities leave no trace in the history until their workflow task
completes. Here the task that reserved, charged and committed fails before
completing (as when its worker dies), a cancellation arrives, and the task
that replaces it sees the cancellation before any step: the order must still
be refunded and its stock and shipment released, though this run of the saga
never reached those steps.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Interceptor,
    StartLocalActivityInput,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from clients.proto.orders.v1 import orders_pb2
from tests.support.polling import eventually
from tests.workflow_unit.fakes import FakeActivities
from tests.workflow_unit.harness import order_input
from worker.main import WORKFLOWS
from worker.workflows import OrderWorkflow


class WorkerDies:
    """Fails every workflow task that reaches the booking request, while `dying` is set.

    A failed workflow task is retried, and the commands of the failed one (the
    markers of the local activities it ran) are dropped: the same as a worker
    dying just before it completes the task.
    """

    dying = True


# The booking request's local activity, with its write (shipped-record) or without.
_BOOKINGS = ("book_shipment_and_record", "book_shipment")


class _DyingOutbound(WorkflowOutboundInterceptor):
    def start_local_activity(self, input: StartLocalActivityInput) -> Any:
        if WorkerDies.dying and input.activity in _BOOKINGS:
            raise RuntimeError("the worker died before completing its workflow task")
        return super().start_local_activity(input)


class _DyingInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_DyingOutbound(outbound))


class _Dying(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _DyingInbound


async def _task_failures(handle: Any) -> int:
    events = [event.event_type async for event in handle.fetch_history_events()]
    return events.count(EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)


async def test_a_cancellation_after_a_lost_task_undoes_what_that_task_did(
    temporal: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities()
    order = order_input()
    queue = f"orders-{uuid.uuid4()}"
    WorkerDies.dying = True
    async with Worker(
        temporal.client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=fakes.all(),
        interceptors=[_Dying()],
        # The interceptor's switch must be the test's own, not a sandboxed copy.
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await temporal.client.start_workflow(
            OrderWorkflow.run,
            order,
            id=f"wf-{order.order_id}",
            task_queue=queue,
            execution_timeout=timedelta(minutes=1),
        )
        await eventually(lambda: _task_failures(handle), lambda failures: failures >= 1)
        assert "charge_payment" in fakes.step_names  # the lost task charged the card

        cancelling = asyncio.create_task(handle.execute_update(OrderWorkflow.cancel, "changed"))
        await asyncio.sleep(0.5)  # admitted while the task keeps failing
        WorkerDies.dying = False
        result = await handle.result()
        await cancelling

    assert result.state == orders_pb2.ORDER_STATE_CANCELLED
    undone = fakes.step_names[fakes.step_names.index("cancel_shipment") :]
    assert undone == ["cancel_shipment", "refund_payment", "release_stock"]
    assert "book_shipment" not in fakes.step_names
