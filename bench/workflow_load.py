"""Traffic for the engine-side baselines, sent straight to Temporal: no gRPC, no database."""

from __future__ import annotations

import itertools
import uuid

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from bench.bare_workflows import BareAcceptWorkflow, BareOrderWorkflow, FloorOrderWorkflow


class BareWorkflows:
    """The bare workflows on `task_queue`, the engine's floor on `floor_queue`:
    each baseline has a worker process of its own."""

    def __init__(self, client: Client, task_queue: str, floor_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._floor_queue = floor_queue
        self._run = uuid.uuid4().hex[:8]
        self._ids = itertools.count()

    def _new_id(self, kind: str) -> str:
        return f"bench-{kind}-{self._run}-{next(self._ids)}"

    async def run_order(self, index: int) -> None:
        """Starts the four-step bare workflow and waits for its end."""
        await self._client.execute_workflow(
            BareOrderWorkflow.run, id=self._new_id("order"), task_queue=self._task_queue
        )

    async def run_floor(self, index: int) -> None:
        """Starts the floor's workflow (four local no-op steps) and waits for its end."""
        await self._client.execute_workflow(
            FloorOrderWorkflow.run, id=self._new_id("floor"), task_queue=self._floor_queue
        )

    async def accept(self, index: int) -> None:
        """An update-with-start, answered once the update's one activity is done:
        the same call CreateOrder makes, with nothing in the workflow."""
        start = WithStartWorkflowOperation(
            BareAcceptWorkflow.run,
            id=self._new_id("accept"),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        await self._client.execute_update_with_start_workflow(
            BareAcceptWorkflow.accept, start_workflow_operation=start
        )
