"""Worker Versioning from the operator's side: versions, the current one, and draining.

What `temporal worker deployment set-current-version` and `describe-version`
do, through the client's raw WorkflowService calls.
"""

from __future__ import annotations

from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionMessage
from temporalio.api.enums.v1 import VersionDrainageStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from tests.support.polling import eventually


async def set_current_version(client: Client, deployment: str, build_id: str) -> None:
    """Makes `build_id` the version new workflows start on.

    The server knows a version once one of its workers has polled: until
    then the call is refused, so it is repeated.
    """
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace, deployment_name=deployment, build_id=build_id
    )

    async def attempt() -> bool:
        try:
            await client.workflow_service.set_worker_deployment_current_version(request)
        except RPCError:
            return False
        return True

    await eventually(attempt, bool, within=30, every=0.2)


async def drainage_status(client: Client, deployment: str, build_id: str) -> int:
    """DRAINING while workflows pinned to the version still run, then DRAINED."""
    response = await client.workflow_service.describe_worker_deployment_version(
        DescribeWorkerDeploymentVersionRequest(
            namespace=client.namespace,
            deployment_version=VersionMessage(deployment_name=deployment, build_id=build_id),
        )
    )
    return int(response.worker_deployment_version_info.drainage_info.status)


DRAINED = VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED


async def running_on(client: Client, deployment: str, build_id: str) -> int:
    """Workflows still running on the version, by the server's search attribute."""
    query = (
        f"TemporalWorkerDeploymentVersion = '{deployment}:{build_id}' "
        "AND ExecutionStatus = 'Running'"
    )
    return (await client.count_workflows(query)).count


async def build_ids_of(handle: WorkflowHandle) -> set[str]:  # type: ignore[type-arg]
    """The versions whose workers completed the workflow's tasks, from its history."""
    history = await handle.fetch_history()
    return {
        event.workflow_task_completed_event_attributes.deployment_version.build_id
        for event in history.events
        if event.HasField("workflow_task_completed_event_attributes")
    }
