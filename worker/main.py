"""The worker process: connects to Temporal, the services and Postgres, then polls."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import (
    Interceptor,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerDeploymentConfig,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from clients.proto.inventory.v1 import inventory_pb2_grpc
from clients.proto.payments.v1 import payments_pb2_grpc
from clients.proto.shipping.v1 import shipping_pb2_grpc
from server.core.breaker_interceptor import guarded_channels
from server.core.credentials import caller_credentials
from server.core.database import create_pool, migrate
from server.core.metrics import watch_pool
from server.core.process import run as run_process
from server.core.process import started, stop_signal
from server.core.seal import Sealer
from server.core.services import WORKER
from server.core.settings import Settings
from server.core.temporal import connect_temporal, metrics_runtime
from server.orders.changes import OrderChanges
from server.orders.projection import OrderProjection
from worker.activities import OrderActivities
from worker.guard import PlatformOnly
from worker.telemetry import ActivityContext
from worker.tracking import DeliveryTrackingWorkflow
from worker.workflows import OrderWorkflow

log = structlog.get_logger(__name__)

WORKFLOWS = [OrderWorkflow, DeliveryTrackingWorkflow]


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The default sandbox, with our protobuf and model modules shared, not reloaded."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "clients", "worker.model", "worker.activities", "google.protobuf", "grpc"
        )
    )


def workflow_runner(settings: Settings) -> WorkflowRunner:
    """How workflow code runs: outside the sandbox unless WORKFLOW_SANDBOX is set.

    The sandbox re-imports the workflow modules for every new workflow and
    runs each activation and each payload's serialization through compiled
    code of its own: under load that was about half of the worker's CPU per
    order (docs/performance.md). What it guards against (a non-deterministic
    call, an import with side effects in workflow code) is checked in CI
    instead: the workflow tests run every path of the saga in the sandbox
    (tests/workflow_unit), and recorded histories replay in it (tests/replay).
    WORKFLOW_SANDBOX=true brings it back in production, e.g. while chasing a
    nondeterminism error.
    """
    return sandbox_runner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner()


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """The Worker Deployment Version this worker polls as, when WORKER_VERSIONING is on.

    Workflows are pinned: one started on a version runs every task on it, so
    a new version may change the saga freely, and the old one keeps running
    until its workflows end (docs/versioning.md).
    """
    if not settings.worker_versioning:
        return None
    assert settings.worker_build_id is not None  # checked by the settings
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.worker_deployment_name, settings.worker_build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


def build_worker(
    client: Client,
    settings: Settings,
    activities: OrderActivities,
    *,
    extra_interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """The worker as it runs in production; `extra_interceptors` come after the platform's."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities.all(),
        workflow_runner=workflow_runner(settings),
        max_concurrent_workflow_task_polls=settings.worker_workflow_task_pollers,
        max_concurrent_activity_task_polls=settings.worker_activity_task_pollers,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_local_activities=settings.worker_max_concurrent_local_activities,
        max_cached_workflows=settings.worker_max_cached_workflows,
        # Only what the platform sealed reaches a workflow (worker/guard.py).
        interceptors=[
            ActivityContext(),
            PlatformOnly(Sealer(settings.payload_keyring())),
            *extra_interceptors,
        ],
        deployment_config=deployment_config(settings),
        # On SIGTERM, activities in flight get this long to finish.
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
    )


async def run(settings: Settings) -> None:
    # Every call goes out as the worker: its token, or its certificate under mTLS.
    credentials = caller_credentials(settings, "worker")
    # The projection belongs to the orders schema, in the orders database.
    pool = await create_pool(
        settings.database_url_of("orders"), max_size=settings.database_pool_max
    )
    watch_pool("worker", pool)
    # The worker writes the order projection; the schema may not exist yet if
    # it starts before the orders service. Migrations are safe to repeat.
    await migrate(pool, "orders")
    # Each with its own circuit breaker: a service that keeps failing is left
    # alone for a while, and activities wait for it on a timer.
    channels = guarded_channels(WORKER, settings, credentials)
    activities = OrderActivities(
        payments=payments_pb2_grpc.PaymentServiceStub(channels["payments"]),
        inventory=inventory_pb2_grpc.InventoryServiceStub(channels["inventory"]),
        shipping=shipping_pb2_grpc.ShippingServiceStub(channels["shipping"]),
        orders=OrderProjection(pool),
        changes=OrderChanges(pool),
    )
    # The SDK's metrics endpoint: its runtime must exist before the client connects.
    runtime = metrics_runtime(f"{settings.metrics_host}:{settings.temporal_metrics_port}")
    client = await connect_temporal(settings, runtime=runtime)
    worker = build_worker(client, settings, activities)

    stop = stop_signal()
    log.info(
        "worker polling",
        task_queue=settings.task_queue,
        temporal=settings.temporal_address,
        build_id=settings.worker_build_id if settings.worker_versioning else None,
    )
    async with worker:
        started()
        await stop.wait()
        log.info("stopping worker")
    for channel in channels.values():
        await channel.close()
    await pool.close()
    log.info("worker stopped")


def main() -> None:
    """Process entry point (server/core/process.py): poll until signalled."""
    run_process("worker", run)


if __name__ == "__main__":
    main()
