"""A rolling deploy with Worker Versioning: running orders finish on the release they began on.

Release A runs the order workflow as it is; release B changes a command
(tests/scale/changed_workflow.py), a change that would break A's orders if
they were replayed through it. Orders are pinned to the version they start
on: after B becomes current, A's orders still run every task on A's worker,
new orders run on B, and once A's orders end A is drained and stopped.
Activities are stand-ins (tests/workflow_unit/fakes.py); the server is a dev
server of the test's own, which reports drainage within a second.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.common import VersioningBehavior
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from clients.proto.orders.v1 import orders_pb2
from server.core.settings import Settings
from server.devstack.paths import PROCFILE
from server.devstack.processes import temporal_dynamic_config_flags
from tests.scale.changed_workflow import RELEASE_MEMO, NextOrderWorkflow
from tests.scale.deployments import (
    DRAINED,
    build_ids_of,
    drainage_status,
    running_on,
    set_current_version,
)
from tests.support.binaries import venv_binary
from tests.support.polling import eventually
from tests.workflow_unit.fakes import FakeActivities
from tests.workflow_unit.harness import order_input
from worker.main import deployment_config
from worker.tracking import DeliveryTrackingWorkflow
from worker.workflows import OrderWorkflow

Order = WorkflowHandle[OrderWorkflow, orders_pb2.Order]

SHIPPED = orders_pb2.ORDER_STATE_SHIPPED
DELIVERED = orders_pb2.ORDER_STATE_DELIVERED


@pytest_asyncio.fixture(scope="module")
async def versioned_temporal() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server that checks versions' drainage every second instead of every few minutes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        ip="127.0.0.1",
        dev_server_extra_args=[
            *temporal_dynamic_config_flags(PROCFILE),
            "--dynamic-config-value",
            'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
            "--dynamic-config-value",
            'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


def release_worker(
    client: Client, task_queue: str, deployment: str, build_id: str, order_workflow: type
) -> Worker:
    """A worker of one release, versioned as worker/main.py is with WORKER_VERSIONING on."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[order_workflow, DeliveryTrackingWorkflow],
        activities=FakeActivities().all(),
        workflow_runner=UnsandboxedWorkflowRunner(),
        deployment_config=deployment_config(
            Settings(
                WORKER_VERSIONING=True,
                WORKER_DEPLOYMENT_NAME=deployment,
                WORKER_BUILD_ID=build_id,
            )
        ),
    )


async def start_orders(client: Client, task_queue: str, count: int) -> list[Order]:
    """Orders that run their saga and then wait for their delivery report."""
    handles = []
    for _ in range(count):
        order = order_input()
        handles.append(
            await client.start_workflow(
                OrderWorkflow.run,
                order,
                id=f"wf-{order.order_id}",
                task_queue=task_queue,
                execution_timeout=timedelta(minutes=2),
            )
        )
    for handle in handles:
        await eventually(lambda h=handle: h.query(OrderWorkflow.order), _shipped, within=30)
    return handles


def _shipped(order: orders_pb2.Order) -> bool:
    return order.state == SHIPPED


async def deliver(orders: Sequence[Order]) -> None:
    for handle in orders:
        await handle.execute_update(OrderWorkflow.confirm_delivery)
        assert (await handle.result()).state == DELIVERED


async def release_of(handle: Order) -> str | None:
    memo = await (await handle.describe()).memo()
    value = memo.get(RELEASE_MEMO)
    return str(value) if value is not None else None


async def test_orders_finish_on_the_version_they_started_on(
    versioned_temporal: WorkflowEnvironment,
) -> None:
    client = versioned_temporal.client
    deployment = f"orders-{uuid.uuid4().hex[:8]}"
    task_queue = f"rolling-{uuid.uuid4().hex[:8]}"
    worker_a = release_worker(client, task_queue, deployment, "a", OrderWorkflow)
    worker_b = release_worker(client, task_queue, deployment, "b", NextOrderWorkflow)

    async with contextlib.AsyncExitStack() as release_b:
        async with worker_a:
            await set_current_version(client, deployment, "a")
            on_a = await start_orders(client, task_queue, 3)

            await release_b.enter_async_context(worker_b)
            await set_current_version(client, deployment, "b")
            on_b = await start_orders(client, task_queue, 2)
            # A's orders get their delivery reports after B became current.
            await deliver(on_a)
            await deliver(on_b)

            for handle in on_a:
                assert await build_ids_of(handle) == {"a"}
                assert await release_of(handle) is None
                info = (await handle.describe()).raw_description.workflow_execution_info
                assert info.versioning_info.behavior == VersioningBehavior.PINNED.value
            for handle in on_b:
                assert await build_ids_of(handle) == {"b"}
                assert await release_of(handle) == "next"

            # Nothing runs on A any more: it is drained, and may be stopped.
            assert await running_on(client, deployment, "a") == 0
            await eventually(
                lambda: drainage_status(client, deployment, "a"),
                lambda status: status == DRAINED,
                within=60,
                every=0.5,
            )
        # A is stopped; B goes on taking new orders from start to end.
        later = await start_orders(client, task_queue, 1)
        await deliver(later)
        assert await build_ids_of(later[0]) == {"b"}
