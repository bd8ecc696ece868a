"""Only the platform starts or steers a workflow: the worker's side of the seals.

A worker interceptor that checks the seal (server/core/seal.py) of every
workflow start, update and signal before the workflow sees it, and seals
what workflow code sends itself (child workflows, their signals, signals to
a parent, continue-as-new). What fails the check changes nothing:

* a start: the run fails at once, UNAUTHENTICATED, before any step;
  so does a run whose input names another workflow than the one it runs
  as (an order's input copied under another id);
* an update: its validator rejects it, so it never enters the history;
* a signal: it is dropped.

Each refusal is a warning in the log and a count in
`workflow_messages_refused_total`. Payloads that were not encrypted under
the platform's keyring are refused even before this (server/core/codec.py).

Checks must replay as they ran. Updates are checked in their validators,
which only run when an update is first delivered (so every workflow update
must have one; a test holds that). Starts and signals are in the history;
their checks sit behind the `sealed-messages` patch, so that runs started
before seals existed replay as they ran (such a run keeps taking unsealed
signals until it ends; under Worker Versioning it never meets this code).
"""

from __future__ import annotations

from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from server.core.seal import Sealed, Sealer
from worker.patches import SEALED_MESSAGES_PATCH, newest_marker

REFUSED = "UNAUTHENTICATED"


class PlatformOnly(Interceptor):
    """The worker interceptor: every workflow of this worker admits only sealed messages."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        sealer = self._sealer

        class _Bound(_GuardInbound):
            _sealer = sealer

        return _Bound


def _refusals(kind: str, name: str, why: str) -> None:
    info = workflow.info()
    workflow.logger.warning(
        "workflow message refused: not sent by the platform",
        extra={"kind": kind, "handler": name, "why": why, "workflow_id": info.workflow_id[:128]},
    )
    workflow.metric_meter().create_counter(
        "workflow_messages_refused_total",
        "Workflow starts, updates and signals refused for a missing or wrong seal",
    ).add(1, {"kind": kind, "workflow_type": info.workflow_type})


def _refuse(kind: str, name: str, why: str) -> NoReturn:
    _refusals(kind, name, why)
    raise ApplicationError(
        f"{kind} {name!r} refused: {why}; only the platform may send it",
        type=REFUSED,
        non_retryable=True,
    )


class _GuardInbound(WorkflowInboundInterceptor):
    _sealer: Sealer

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_GuardOutbound(outbound, self._sealer))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if _sealed_messages():
            info = workflow.info()
            why = self._sealer.verify(
                input.headers, Sealed("start", info.workflow_type, info.workflow_id)
            )
            if why is not None:
                _refuse("start", info.workflow_type, why)
            # Each workflow class says which id its input belongs under.
            bound = getattr(input.type, "workflow_id_for", None)
            if bound is None or len(input.args) != 1:
                _refuse("start", info.workflow_type, "a workflow not bound to its id")
            if bound(input.args[0]) != info.workflow_id:
                _refuse("start", info.workflow_type, "an input that belongs to another workflow")
        return await super().execute_workflow(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        why = self._sealer.verify(
            input.headers, Sealed("update", input.update, workflow.info().workflow_id, input.id)
        )
        if why is not None:
            _refuse("update", input.update, why)
        super().handle_update_validator(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        if _sealed_messages():
            why = self._sealer.verify(
                input.headers, Sealed("signal", input.signal, workflow.info().workflow_id)
            )
            if why is not None:
                _refusals("signal", input.signal, why)
                return
        await super().handle_signal(input)


class _GuardOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, sealer: Sealer) -> None:
        super().__init__(next)
        self._sealer = sealer

    def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        input.headers = self._sealer.with_seal(
            input.headers, Sealed("start", input.workflow, input.id)
        )
        return super().start_child_workflow(input)

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        input.headers = self._sealer.with_seal(
            input.headers, Sealed("signal", input.signal, input.child_workflow_id)
        )
        await super().signal_child_workflow(input)

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        input.headers = self._sealer.with_seal(
            input.headers, Sealed("signal", input.signal, input.workflow_id)
        )
        await super().signal_external_workflow(input)

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        info = workflow.info()
        input.headers = self._sealer.with_seal(
            input.headers, Sealed("start", input.workflow or info.workflow_type, info.workflow_id)
        )
        super().continue_as_new(input)


def _sealed_messages() -> bool:
    """Whether this run checks seals: every run but those started before the check."""
    # A run with one of the markers that stand for every earlier patch has
    # the seal's; asked first, so that a new run records that marker alone,
    # and memoized by the SDK, so that a run without them asks for the seal's
    # own marker as it always did.
    return newest_marker() is not None or workflow.patched(SEALED_MESSAGES_PATCH)
