"""A new release of the order workflow, for the rolling-deploy test.

Registered under the same name as OrderWorkflow, it differs in one command:
it records which release runs the order in the workflow's memo before the
saga starts. Replaying an order started by the old release through it would
fail with a nondeterminism error, as a change made without `workflow.patched`
does: only Worker Versioning keeps such orders safe.
"""

from __future__ import annotations

from temporalio import workflow

from clients.proto.orders.v1 import orders_pb2
from worker.model import OrderInput
from worker.workflows import OrderWorkflow

RELEASE_MEMO = "release"


@workflow.defn(name="OrderWorkflow")
class NextOrderWorkflow(OrderWorkflow):
    @workflow.run
    async def run(self, order: OrderInput) -> orders_pb2.Order:
        workflow.upsert_memo({RELEASE_MEMO: "next"})
        return await super().run(order)
