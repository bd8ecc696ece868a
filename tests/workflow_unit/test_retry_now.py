"""An operator's `retry_now` (OperatorService.RetryStep) ends the pause before the next attempt.

The step here asks for two minutes between attempts (as a call refused by an
open circuit breaker does); the order can only ship within the test's
bounded waits if each signal cut a pause short.
"""

from __future__ import annotations

from datetime import timedelta

from clients.errors import Reason
from clients.proto.orders.v1 import orders_pb2
from tests.support.polling import eventually
from tests.workflow_unit.harness import Saga
from tests.workflow_unit.test_order_workflow import wait_for_state
from worker.contract import RETRY_NOW
from worker.workflows import OrderWorkflow

TWO_MINUTES = timedelta(minutes=2)


async def test_each_retry_signal_cuts_one_pause_short(saga: Saga) -> None:
    saga.fakes.fail_times(
        "charge_payment", 2, Reason.DEPENDENCY_UNAVAILABLE.value, next_retry_delay=TWO_MINUTES
    )
    handle = await saga.start()

    for attempt in (2, 3):
        await eventually(
            lambda: handle.query(OrderWorkflow.progress),
            lambda progress: (
                progress.current_step == "charge_payment" and bool(progress.last_attempt_failure)
            ),
        )
        assert saga.fakes.step_names.count("charge_payment") == attempt - 1
        await handle.signal(RETRY_NOW.name)
        await saga.fakes.wait_until(
            lambda attempt=attempt: saga.fakes.step_names.count("charge_payment") == attempt
        )

    await wait_for_state(saga.fakes, orders_pb2.ORDER_STATE_SHIPPED)


async def test_a_retry_signal_with_nothing_to_retry_changes_nothing(saga: Saga) -> None:
    gate = saga.fakes.block("charge_payment")
    handle = await saga.start()
    await gate.started.wait()
    await handle.signal(RETRY_NOW.name)  # nothing has failed: not kept for later
    gate.open()
    await wait_for_state(saga.fakes, orders_pb2.ORDER_STATE_SHIPPED)
    assert saga.fakes.step_names.count("charge_payment") == 1
