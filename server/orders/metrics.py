"""The front door's business metric: orders accepted."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowUpdateWithStartInput,
    WorkflowUpdateHandle,
)

ORDERS_CREATED = Counter(
    "orders_created_total",
    "Orders accepted by CreateOrder (handed to their order workflow, which stored them).",
    ["currency"],
)

_ORDER_WORKFLOW = "OrderWorkflow"


class CountOrdersCreated(Interceptor):
    """Counts each order workflow that accepted a new order through update-with-start.

    CreateOrder answers a repeat of an accepted request from the projection,
    without reaching Temporal, so repeats are not counted (only a repeat sent
    while the first attempt is still in flight may be).
    """

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Outbound(next)


class _Outbound(OutboundInterceptor):
    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        handle = await super().start_update_with_start_workflow(input)
        start = input.start_workflow_input
        if start.workflow == _ORDER_WORKFLOW:
            currency = getattr(start.args[0], "currency_code", "") if start.args else ""
            ORDERS_CREATED.labels(currency or "unknown").inc()
        return handle
