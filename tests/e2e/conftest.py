"""The real stack: four services and the worker as processes, real Temporal, real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.support.stack import Stack


@pytest_asyncio.fixture(scope="session")
async def stack(
    temporal: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    running = Stack(
        workdir=tmp_path_factory.mktemp("stack"),
        database_url=database_url,
        temporal_address=temporal.client.service_client.config.target_host,
        extra_env={
            # Long enough to cancel an order mid-step, short enough to keep tests quick.
            "SHIPPING_BOOKING_SECONDS": "2",
            "PAYMENTS_SLOW_SECONDS": "2",
            # How long CreateOrder waits for a worker before answering UNAVAILABLE.
            "ORDER_WORKFLOW_WAIT_SECONDS": "4",
        },
    )
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On failure, attach the stack's logs to the report."""
    outcome = yield
    report = outcome.get_result()
    stack = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(stack, Stack):
        report.sections.append(("stack logs", stack.logs()))
