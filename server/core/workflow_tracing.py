"""Traces through Temporal: the caller's trace continues into workflows and activities.

`WorkflowTracing` is the SDK's `TracingInterceptor` (W3C context in Temporal
headers) with one change: the workflow's `RunWorkflow` span is the parent of
what the workflow does (its activities, child workflows, update handlers), not
a sibling of it, so that a trace reads

    StartWorkflow:OrderWorkflow                     (front door, client)
      RunWorkflow:OrderWorkflow                     (worker)
        StartActivity:charge_payment
          RunActivity:charge_payment
            /payments.v1.PaymentService/Charge      (gRPC client, then server)

Workflow spans are instants (started and ended at once, and never again
while the workflow replays its history). For a later activity to name the
`RunWorkflow` span as its parent even after a replay, which does not create
that span again, the span's id is derived from the workflow run id: every
replay computes the same id without starting a span.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import opentelemetry.context
import opentelemetry.trace
import temporalio.worker
import temporalio.workflow
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor

from server.core.telemetry import chosen_span_id

RUN_WORKFLOW = "RunWorkflow:"


def run_span_id(run_id: str) -> int:
    """The id of a workflow run's RunWorkflow span: 64 bits of a hash of the run id."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big") or 1


class WorkflowTracing(TracingInterceptor):
    """TracingInterceptor whose RunWorkflow span parents the workflow's work."""

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)
        return _WorkflowInbound

    def _completed_workflow_span(self, params: Any) -> Any:
        # Runs outside the sandbox, and only when the span is really to be created.
        if params.name.startswith(RUN_WORKFLOW) and params.attributes:
            with chosen_span_id(run_span_id(str(params.attributes["temporalRunID"]))):
                return super()._completed_workflow_span(params)
        return super()._completed_workflow_span(params)


class _WorkflowInbound(TracingWorkflowInboundInterceptor):
    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        # The SDK's own version, except that what follows the RunWorkflow span runs under it.
        with super()._top_level_workflow_context(success_is_complete=True):
            self._completed_span(
                f"{RUN_WORKFLOW}{temporalio.workflow.info().workflow_type}",
                kind=opentelemetry.trace.SpanKind.SERVER,
            )
            with _attached(self._run_context()):
                return await self.next.execute_workflow(input)

    @contextmanager
    def _top_level_workflow_context(self, *, success_is_complete: bool) -> Iterator[None]:
        # Signals and updates: their spans, and what their handlers start, go under RunWorkflow.
        with super()._top_level_workflow_context(success_is_complete=success_is_complete):
            with _attached(self._run_context()):
                yield

    def _run_context(self) -> opentelemetry.context.Context:
        """The current context with this run's RunWorkflow span as the current span."""
        current = opentelemetry.context.get_current()
        parent = opentelemetry.trace.get_current_span(current).get_span_context()
        if not parent.is_valid:
            return current  # started without a trace: no workflow spans either
        run = opentelemetry.trace.SpanContext(
            trace_id=parent.trace_id,
            span_id=run_span_id(temporalio.workflow.info().run_id),
            is_remote=False,
            trace_flags=parent.trace_flags,
            trace_state=parent.trace_state,
        )
        return opentelemetry.trace.set_span_in_context(
            opentelemetry.trace.NonRecordingSpan(run), current
        )


@contextmanager
def _attached(context: opentelemetry.context.Context) -> Iterator[None]:
    """Attaches `context` for the block.

    The block may end in another contextvars.Context (a workflow evicted from
    the cache is finalised wherever garbage collection runs): there is nothing
    to detach then, and trying would only log an error.
    """
    token = opentelemetry.context.attach(context)
    try:
        yield
    finally:
        if opentelemetry.context.get_current() is context:
            try:
                token.var.reset(token)
            except ValueError:
                pass
