"""Runs the real OrderWorkflow, in the production sandbox, beside fake activities."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from clients.proto.orders.v1 import orders_pb2
from tests.workflow_unit.fakes import FakeActivities
from worker.main import WORKFLOWS, sandbox_runner
from worker.model import Address, Line, OrderInput
from worker.workflows import OrderWorkflow


def order_input(**changes: object) -> OrderInput:
    order_id = f"order-{uuid.uuid4()}"
    fields: dict[str, object] = dict(
        order_id=order_id,
        request_id=f"req-{order_id}",
        fingerprint="fp",
        customer_id="c1",
        currency_code="USD",
        lines=[Line("SKU-1", 2, 1000)],
        address=Address(name="A", line1="1 St", city="X", postal_code="1", country_code="US"),
        payment_token="tok_visa",
    )
    fields.update(changes)
    return OrderInput(**fields)  # type: ignore[arg-type]


@asynccontextmanager
async def order_worker(client: Client, fakes: FakeActivities) -> AsyncIterator[str]:
    """Runs the real workflow, in the production sandbox, beside the fakes; yields its queue."""
    task_queue = f"orders-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=fakes.all(),
        workflow_runner=sandbox_runner(),
        # Heartbeats (and so cancellations) reach the activities without the
        # default 30 s throttle.
        max_heartbeat_throttle_interval=timedelta(milliseconds=50),
        default_heartbeat_throttle_interval=timedelta(milliseconds=50),
    ):
        yield task_queue


@dataclass
class Saga:
    client: Client
    task_queue: str
    fakes: FakeActivities
    handles: list[WorkflowHandle[OrderWorkflow, orders_pb2.Order]] = field(default_factory=list)

    async def start(
        self, order: OrderInput | None = None
    ) -> WorkflowHandle[OrderWorkflow, orders_pb2.Order]:
        order = order or order_input()
        handle = await self.client.start_workflow(
            OrderWorkflow.run,
            order,
            id=f"wf-{order.order_id}",
            task_queue=self.task_queue,
            execution_timeout=timedelta(minutes=1),
            # A workflow task that waits on local activities is cut at 80% of
            # this, so that updates and cancellations are seen meanwhile; the
            # default (10 s) would make the tests that hold a local step slow.
            task_timeout=timedelta(seconds=3),
        )
        self.handles.append(handle)
        return handle
