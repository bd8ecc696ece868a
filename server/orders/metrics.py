"""The front door's business metric: orders accepted."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)

from worker import contract

ORDERS_CREATED = Counter(
    "orders_created_total",
    "Orders accepted by CreateOrder (their order workflow started).",
    ["currency"],
)


class CountOrdersCreated(Interceptor):
    """Counts each order workflow that CreateOrder started.

    A start succeeds once per order id (a repeat of the request finds the
    workflow there and is refused by Temporal), so each order counts once,
    concurrent repeats included.
    """

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Outbound(next)


class _Outbound(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        handle = await super().start_workflow(input)
        if input.workflow == contract.NAME:
            currency = getattr(input.args[0], "currency_code", "") if input.args else ""
            ORDERS_CREATED.labels(currency or "unknown").inc()
        return handle
