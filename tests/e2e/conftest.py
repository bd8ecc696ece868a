"""The real stack: four services and the worker as processes, real Temporal, real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.support.stack import Stack, running_stack


@pytest_asyncio.fixture(scope="session")
async def stack(
    temporal: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path_factory.mktemp("stack"),
        database_url,
        temporal.client.service_client.config.target_host,
        # Long enough to cancel an order mid-step, short enough to keep tests quick.
        SHIPPING_BOOKING_SECONDS="2",
        PAYMENTS_SLOW_SECONDS="3",
        # A slow charge holds the workflow task; cut at 80% of this (1.6 s),
        # well before tok_slow's charge ends, so that the tests can watch,
        # update and cancel an order during its charge.
        ORDER_WORKFLOW_TASK_SECONDS="2",
        # How long CreateOrder waits for a worker before answering UNAVAILABLE.
        ORDER_WORKFLOW_WAIT_SECONDS="4",
    ) as stack:
        yield stack
