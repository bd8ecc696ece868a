"""The engine's floor is what it claims to be: one workflow task, its four steps local.

Runs the floor's worker setup (bench/bare_worker.py) against the session's
Temporal dev server and reads the workflow's history; nothing is timed.
"""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.bare_worker import workflows_and_runner
from bench.bare_workflows import STEPS, FloorOrderWorkflow, bare_step


async def test_the_floor_is_one_workflow_task_of_local_steps(
    temporal: WorkflowEnvironment,
) -> None:
    workflows, runner = workflows_and_runner(floor=True)
    assert workflows == [FloorOrderWorkflow]
    assert isinstance(runner, UnsandboxedWorkflowRunner)
    task_queue = f"floor-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal.client,
        task_queue=task_queue,
        workflows=workflows,
        activities=[bare_step],
        workflow_runner=runner,
    ):
        handle = await temporal.client.start_workflow(
            FloorOrderWorkflow.run, id=f"{task_queue}-0", task_queue=task_queue
        )
        await handle.result()
    events = [EventType.Name(e.event_type) for e in (await handle.fetch_history()).events]
    assert events.count("EVENT_TYPE_WORKFLOW_TASK_COMPLETED") == 1
    assert events.count("EVENT_TYPE_MARKER_RECORDED") == len(STEPS)
    assert "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" not in events
