"""The order workflows, as the orders process reaches them: its one door to Temporal.

Every call the front door, the operators' API and the sweep for abandoned
orders make to Temporal goes through `WorkflowGateway`: starting an order's
workflow, its updates, signals and queries, describing it, and the
visibility queries of the sweep. The workflow is known by its contract
(worker/contract.py), never by its code. Temporal's errors are turned here
into the error vocabulary's (clients/errors.py): the workflow's own refusal
keeps its reason, and Temporal out of reach is DEPENDENCY_UNAVAILABLE. The
sweep's calls are the exception: it logs their failures itself and tries
again at its next pass (server/orders/abandoned.py).

tests/unit/test_layering.py holds the rest of server/orders to that.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients.errors import Error, Reason
from clients.proto.orders.v1 import orders_pb2 as pb
from worker import contract
from worker.model import OrderInput, Progress

log = structlog.get_logger(__name__)

R = TypeVar("R")

# How long a read waits for the workflow's own account of its progress (or
# of its handlers). A workflow in the middle of a step answers only when the
# step's workflow task ends; the read answers without it meanwhile.
PROGRESS_WAIT = timedelta(seconds=0.8)
# The SDK's built-in query that lists a workflow's handlers.
METADATA_QUERY = "__temporal_workflow_metadata"


def _from_workflow(error: BaseException | None) -> Error:
    """The caller-facing error for a workflow's rejection of an update."""
    if isinstance(error, ApplicationError) and error.type in Reason.__members__:
        return Error(Reason(str(error.type)), error.message)
    log.error("unexpected workflow failure", error=str(error))
    return Error(Reason.INTERNAL, "internal error; the server log has the details")


def temporal_unavailable(error: RPCError) -> Error:
    log.warning("temporal call failed", status=str(error.status), error=str(error))
    return Error(Reason.DEPENDENCY_UNAVAILABLE, "the workflow service is unavailable; retry")


class NoAnswer(enum.Enum):
    """Why the workflow gave no account of its progress."""

    # In the middle of a step: it did not answer within PROGRESS_WAIT.
    BUSY = "busy"
    # The query failed: the workflow is not running.
    NOT_RUNNING = "not running"


@dataclass(frozen=True)
class PendingStep:
    """A step (an activity) the workflow waits on, as Temporal reports it."""

    name: str
    attempt: int
    last_failure: str
    # The last failure's application type; "" when it had none.
    failure_type: str


@dataclass(frozen=True)
class WorkflowProgress:
    """The workflow's own account of its progress, with what Temporal knows of it."""

    progress: Progress
    running: bool
    pending_steps: tuple[PendingStep, ...]


@dataclass(frozen=True)
class WorkflowRun:
    """An order's workflow as Temporal describes it."""

    # WorkflowExecutionStatus's name (RUNNING, TERMINATED, ...); "" if Temporal gave none.
    status: str
    start_time: datetime | None
    close_time: datetime | None

    @property
    def running(self) -> bool:
        return self.status == WorkflowExecutionStatus.RUNNING.name


@dataclass(frozen=True)
class Started:
    """An order's workflow, just started."""

    # Its run's id, as Temporal answered the start.
    run_id: str | None


@dataclass(frozen=True)
class ClosedRun:
    """A closed run of a workflow, as Temporal's visibility lists it."""

    workflow_id: str
    run_id: str
    # WorkflowExecutionStatus's name; "" if Temporal gave none.
    status: str


class WorkflowGateway:
    def __init__(
        self,
        temporal: Client,
        *,
        task_queue: str,
        wait: timedelta = timedelta(seconds=10),
        task_timeout: timedelta = timedelta(seconds=4),
    ) -> None:
        self._temporal = temporal
        self._task_queue = task_queue
        # How long a call waits on a workflow (which needs a running worker).
        self.wait = wait
        self._task_timeout = task_timeout

    # -------------------------------------------------------------- start

    async def start(self, order_input: OrderInput) -> Started | None:
        """Starts the order's workflow; None if the order id has had one already.

        A finished order's id is never reused: a late repeat of its request
        finds it in the projection instead.
        """
        try:
            handle = await self._temporal.start_workflow(
                contract.NAME,
                order_input,
                result_type=contract.RESULT_TYPE,
                id=order_input.order_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                task_timeout=self._task_timeout,
                rpc_timeout=self.wait,
            )
        except WorkflowAlreadyStartedError:
            return None
        except RPCError as rpc_error:
            raise temporal_unavailable(rpc_error) from None
        return Started(handle.first_execution_run_id)

    async def why_not_stored(self, order_id: str) -> Error:
        """Why an order whose workflow exists is not in the projection."""
        handle = self._temporal.get_workflow_handle(order_id)
        try:
            if (await handle.describe()).status == WorkflowExecutionStatus.FAILED:
                await handle.result()
        except WorkflowFailureError as failed:
            # The workflow refused the order before storing it (see OrderWorkflow._refuse).
            return _from_workflow(failed.cause)
        except RPCError as rpc_error:
            return temporal_unavailable(rpc_error)
        return Error(Reason.DEPENDENCY_UNAVAILABLE, "the order is being stored; retry")

    # ---------------------------------------------------- updates, signals

    async def update(self, order_id: str, update: contract.Update[R], *args: Any) -> R | None:
        """Runs an update on the order's workflow; None if the workflow is gone."""
        handle = self._temporal.get_workflow_handle(order_id)
        try:
            async with self._bounded("the change was sent but not yet confirmed"):
                return await handle.execute_update(
                    update.name, args=args, result_type=update.result_type
                )
        except WorkflowUpdateFailedError as failed:
            raise _from_workflow(failed.cause) from None
        except RPCError as rpc_error:
            if rpc_error.status == RPCStatusCode.NOT_FOUND:
                return None  # never existed, or finished: the projection knows
            raise temporal_unavailable(rpc_error) from None

    async def signal(self, order_id: str, signal: contract.Signal, *args: Any) -> bool:
        """Sends a signal to the order's workflow; False if the workflow has ended."""
        handle = self._temporal.get_workflow_handle(order_id)
        try:
            await handle.signal(signal.name, args=list(args), rpc_timeout=self.wait)
        except RPCError as rpc_error:
            if rpc_error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise temporal_unavailable(rpc_error) from None
        return True

    @contextlib.asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        """Bounds a wait on the order's workflow (which needs a running worker).

        What was sent is durable in Temporal; a caller that retries the same
        request later gets the same order, never a second one.
        """
        try:
            async with asyncio.timeout(self.wait.total_seconds()):
                yield
        # The SDK reports its cancelled call as its own error, not as a timeout.
        except (TimeoutError, RPCTimeoutOrCancelledError):
            log.warning("order workflow did not answer in time", waited=str(self.wait))
            raise Error(
                Reason.DEPENDENCY_UNAVAILABLE,
                f"{what}: the order workflow did not answer in time; retry the same request",
            ) from None

    # ------------------------------------------------------------ queries

    async def progress(self, order_id: str) -> WorkflowProgress | NoAnswer:
        """The workflow's account of its progress, waiting at most PROGRESS_WAIT for it."""
        handle = self._temporal.get_workflow_handle(order_id)
        try:
            async with asyncio.timeout(PROGRESS_WAIT.total_seconds()):
                progress = await handle.query(
                    contract.PROGRESS.name, result_type=contract.PROGRESS.result_type
                )
        # The SDK reports its cancelled call as its own error, not as a timeout.
        except (TimeoutError, RPCTimeoutOrCancelledError):
            return NoAnswer.BUSY
        except RPCError as rpc_error:
            raise temporal_unavailable(rpc_error) from None
        except WorkflowQueryFailedError:
            return NoAnswer.NOT_RUNNING
        try:
            description = await handle.describe()
        except RPCError as rpc_error:
            raise temporal_unavailable(rpc_error) from None
        return WorkflowProgress(
            progress=progress,
            running=description.status == WorkflowExecutionStatus.RUNNING,
            pending_steps=tuple(
                PendingStep(
                    name=pending.activity_type.name,
                    attempt=pending.attempt,
                    last_failure=pending.last_failure.message,
                    failure_type=pending.last_failure.application_failure_info.type,
                )
                for pending in description.raw_description.pending_activities
            ),
        )

    async def describe(self, order_id: str) -> WorkflowRun | None:
        """The order's workflow as Temporal describes it; None when Temporal has none."""
        handle = self._temporal.get_workflow_handle(order_id)
        try:
            description = await handle.describe(rpc_timeout=self.wait)
        except RPCError as rpc_error:
            if rpc_error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise temporal_unavailable(rpc_error) from None
        return WorkflowRun(
            status=description.status.name if description.status else "",
            start_time=description.start_time,
            close_time=description.close_time,
        )

    async def handles_signal(self, order_id: str, signal: contract.Signal) -> bool | None:
        """Whether the workflow has a handler for `signal`; None if it did not say in time."""
        handle = self._temporal.get_workflow_handle(order_id)
        try:
            async with asyncio.timeout(PROGRESS_WAIT.total_seconds()):
                metadata = await handle.query(METADATA_QUERY, result_type=WorkflowMetadata)
        except (TimeoutError, RPCTimeoutOrCancelledError, WorkflowQueryFailedError, RPCError):
            return None
        signals = metadata.definition.signal_definitions
        return any(handler.name == signal.name for handler in signals)

    # ------------------------------------------------------ the sweep's

    async def closed_runs(self, query: str) -> AsyncIterator[ClosedRun]:
        """The closed runs a visibility query finds (Temporal's errors as they are)."""
        async for execution in self._temporal.list_workflows(query):
            status = execution.status.name if execution.status is not None else ""
            yield ClosedRun(execution.id, execution.run_id, status)

    async def final_order(self, order_id: str, run_id: str) -> pb.Order:
        """A completed run's result: the order as the saga left it (errors as Temporal's)."""
        handle = self._temporal.get_workflow_handle(order_id, run_id=run_id, result_type=pb.Order)
        return await handle.result()
