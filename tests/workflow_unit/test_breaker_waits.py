"""A local step refused by an open circuit breaker waits as long as the breaker said.

On the time-skipping test server, whose timers fire at once: the history's
timers show how long the workflow meant to wait.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from clients.errors import Reason
from clients.proto.orders.v1 import orders_pb2
from tests.workflow_unit.fakes import FakeActivities
from tests.workflow_unit.harness import order_input, order_worker
from worker.workflows import OrderWorkflow


async def test_the_wait_a_failure_asks_for_replaces_the_schedule(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities()
    # An ordinary outage: retried on the step schedule (1 s after the first failure).
    fakes.fail_times("reserve_stock", 1)
    # The breaker in front of payments is open for 42 s more, twice in a row.
    fakes.fail_times(
        "charge_payment",
        2,
        Reason.DEPENDENCY_UNAVAILABLE.value,
        next_retry_delay=timedelta(seconds=42),
    )
    # The order then fails for good, so that the workflow ends and the test
    # server skips its timers while the test waits for the result.
    fakes.fail("book_shipment", Reason.ADDRESS_UNDELIVERABLE.value)
    order = order_input()

    async with order_worker(time_skipping_env.client, fakes) as task_queue:
        handle = await time_skipping_env.client.start_workflow(
            OrderWorkflow.run, order, id=f"wf-{order.order_id}", task_queue=task_queue
        )
        result = await handle.result()
        history = await handle.fetch_history()

    waits = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    assert waits == [timedelta(seconds=1), timedelta(seconds=42), timedelta(seconds=42)]
    assert fakes.step_names.count("charge_payment") == 3
    assert result.state == orders_pb2.ORDER_STATE_FAILED
    assert result.failure.reason == Reason.ADDRESS_UNDELIVERABLE.value
