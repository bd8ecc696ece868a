"""Delivery tracking: a long-lived workflow per shipped order.

It waits for the carrier's delivery report (the `report_delivery` signal).
So that its history stays bounded however long delivery takes, it continues
as new every period (24 hours by default). Before rolling over it lets every
running handler finish and checks once more for a report, so that a report
arriving during the rollover is never dropped: Temporal refuses to close a run
that has unseen signals, and the retried task sees them.

An order still undelivered after the escalation delay is escalated once: a
log line, a metric, and a signal to the order workflow, which records it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from worker.contract import DELIVERY_OVERDUE
    from worker.model import TrackingInput


@workflow.defn
class DeliveryTrackingWorkflow:
    @staticmethod
    def workflow_id_for(tracking: TrackingInput) -> str:
        """Tracking runs under its order's tracking id, for that order alone."""
        return tracking_id(tracking.order_id)

    def __init__(self) -> None:
        self._delivered = False

    @workflow.signal
    def report_delivery(self) -> None:
        self._delivered = True

    @workflow.query
    def delivered(self) -> bool:
        return self._delivered

    @workflow.run
    async def run(self, tracking: TrackingInput) -> None:
        rollover_at = workflow.now() + timedelta(seconds=tracking.period_seconds)
        escalate_at = datetime.fromtimestamp(tracking.shipped_at_epoch, UTC) + timedelta(
            seconds=tracking.escalate_after_seconds
        )
        while not self._delivered:
            wake_at = rollover_at if tracking.escalated else min(rollover_at, escalate_at)
            try:
                await workflow.wait_condition(
                    lambda: self._delivered,
                    timeout=max(wake_at - workflow.now(), timedelta(0)),
                )
            except TimeoutError:
                pass
            if self._delivered:
                break
            if not tracking.escalated and workflow.now() >= escalate_at:
                tracking = replace(tracking, escalated=True)
                await self._escalate(tracking)
            if workflow.now() >= rollover_at:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._delivered:
                    break
                workflow.continue_as_new(replace(tracking, rollovers=tracking.rollovers + 1))
        workflow.logger.info("delivery reported", extra={"order_id": tracking.order_id})

    async def _escalate(self, tracking: TrackingInput) -> None:
        workflow.logger.warning(
            "order not delivered in time; escalating",
            extra={"order_id": tracking.order_id, "days": tracking.escalate_after_seconds / 86400},
        )
        workflow.metric_meter().create_counter(
            "order_delivery_escalations_total", "Shipped orders not delivered in time"
        ).add(1)
        parent = workflow.info().parent
        if parent is not None:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(
                DELIVERY_OVERDUE.name
            )


def tracking_id(order_id: str) -> str:
    """The id of an order's delivery-tracking workflow."""
    return f"{order_id}:delivery"


__all__ = ["DeliveryTrackingWorkflow", "tracking_id"]
