"""The baselines on the engine side: what the order saga would cost with nothing in it.

Two of them: the order's steps as regular activities (a round trip through the
Temporal server each), and the engine's floor, the same steps as local
activities in one workflow task. Imports nothing but the SDK, so the workflow
sandbox loads it as it is.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

# The order's business steps; the projection writes are not steps.
STEPS = ("reserve_stock", "charge_payment", "commit_stock", "arrange_shipping")
STEP_TIMEOUT = timedelta(seconds=30)


@activity.defn
async def bare_step(step: str) -> str:
    """Does nothing: what remains is the engine's round trip for one activity."""
    return step


@workflow.defn
class BareOrderWorkflow:
    """Four regular (not local) no-op activities, one after the other."""

    @workflow.run
    async def run(self) -> None:
        for step in STEPS:
            await workflow.execute_activity(bare_step, step, start_to_close_timeout=STEP_TIMEOUT)


@workflow.defn
class FloorOrderWorkflow:
    """The engine's floor: the four no-op steps as local activities.

    They run inside the workflow task that asks for them, so a workflow is its
    start, one workflow task and its completion; its worker runs the workflow
    code outside the sandbox, as the platform's worker does. Nothing the
    platform could do on this Temporal server costs less per order.
    """

    @workflow.run
    async def run(self) -> None:
        for step in STEPS:
            await workflow.execute_local_activity(
                bare_step, step, start_to_close_timeout=STEP_TIMEOUT
            )


@workflow.defn
class BareAcceptWorkflow:
    """An update that returns after one regular activity: CreateOrder with nothing in it."""

    def __init__(self) -> None:
        self._accepted = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._accepted)

    @workflow.update
    async def accept(self) -> str:
        await workflow.execute_activity(bare_step, "accept", start_to_close_timeout=STEP_TIMEOUT)
        self._accepted = True
        return workflow.info().workflow_id
