"""The four services in-process, over the session's database and Temporal server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.fuzz.inprocess import Served, serving


@pytest_asyncio.fixture(scope="package")
async def services(
    temporal: WorkflowEnvironment, database_url: str
) -> AsyncIterator[dict[str, Served]]:
    async with serving(database_url, temporal.client.service_client.config.target_host) as served:
        yield served
