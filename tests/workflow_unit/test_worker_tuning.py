"""The worker's tuning settings reach the Temporal worker."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from server.core.settings import Settings
from worker.activities import OrderActivities
from worker.main import build_worker


def activities() -> OrderActivities:
    unused: Any = None  # no activity runs here
    return OrderActivities(payments=unused, inventory=unused, shipping=unused, orders=unused)


async def test_tuning_settings_reach_the_worker(temporal: WorkflowEnvironment) -> None:
    settings = Settings(
        TEMPORAL_TASK_QUEUE=f"tuning-{uuid.uuid4()}",
        WORKER_WORKFLOW_TASK_POLLERS=3,
        WORKER_ACTIVITY_TASK_POLLERS=4,
        WORKER_MAX_CONCURRENT_WORKFLOW_TASKS=30,
        WORKER_MAX_CONCURRENT_ACTIVITIES=30,
        WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES=40,
        WORKER_MAX_CACHED_WORKFLOWS=50,
    )

    config = build_worker(temporal.client, settings, activities()).config()

    assert config["max_concurrent_workflow_task_polls"] == 3
    assert config["max_concurrent_activity_task_polls"] == 4
    assert config["max_concurrent_workflow_tasks"] == 30
    assert config["max_concurrent_activities"] == 30
    assert config["max_concurrent_local_activities"] == 40
    assert config["max_cached_workflows"] == 50
    assert isinstance(config["workflow_runner"], UnsandboxedWorkflowRunner)


async def test_the_sandbox_comes_back_when_asked(temporal: WorkflowEnvironment) -> None:
    settings = Settings(TEMPORAL_TASK_QUEUE=f"tuning-{uuid.uuid4()}", WORKFLOW_SANDBOX=True)

    config = build_worker(temporal.client, settings, activities()).config()

    assert isinstance(config["workflow_runner"], SandboxedWorkflowRunner)
