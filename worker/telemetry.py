"""The worker's share of logs and traces: which order an activity works for."""

from __future__ import annotations

from typing import Any

import structlog
from opentelemetry import trace
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from server.core.logging import order_id_in


class ActivityContext(Interceptor):
    """Binds the activity's order, workflow and type to its log lines and span.

    The order workflow's id is the order id, so every line an activity (or
    the code it calls) logs carries `order_id`, and its span `order.id`.
    """

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        bound: dict[str, str] = {
            "workflow_id": info.workflow_id or "",
            "activity_type": info.activity_type,
        }
        order_id = order_id_in(info.workflow_id or "")
        span = trace.get_current_span()
        if order_id:
            bound["order_id"] = order_id
            span.set_attribute("order.id", order_id)
        if span.get_span_context().is_valid:
            bound["trace_id"] = format(span.get_span_context().trace_id, "032x")
        # Bound for the rest of the activity's task, not only this call: the SDK
        # logs a failed activity after the call returns, and that line should
        # carry the order and the trace too. Each activity runs in a task of its
        # own, so nothing leaks into another activity.
        structlog.contextvars.bind_contextvars(**bound)
        return await super().execute_activity(input)
