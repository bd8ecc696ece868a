"""The order workflow: a saga over the inventory, payment and shipping services.

    reserve stock -> charge payment -> commit stock -> arrange shipping
    -> wait for the delivery report

The steps run through worker/saga.py's `Steps`, which retries them and
undoes them. Each step's compensation (release stock, refund, cancel
shipment) is registered *before* the step runs, because a step can take
effect and still fail to report back. When a step fails for good, or the
order is cancelled, the compensations run in reverse order (since
`one-task-saga`, those of every step: see `_undo_every_step`), shielded from
workflow cancellation and retried until they succeed; one that keeps failing
flags the order for an operator instead of being dropped.

Callers know the workflow by its contract (worker/contract.py): its name,
input, and the names of its updates, queries and signals, which the handlers
below are declared under.

Every change of state is written to the read-side projection with a version
number, so the front door can serve reads without asking Temporal.

How the workflow talks to the engine: a round trip through the Temporal
server costs far more than a quick call, so every step that usually answers
at once runs as a local activity, inside the workflow task that asks for it:

* `local-steps` patch: the projection writes, reserving and committing stock;
* `one-task-saga` patch: the card charge, and the request to book the
  shipment. Only when the carrier does not confirm the booking at once does
  the workflow wait for it with arrange_shipping, a regular activity that
  heartbeats and resumes from its heartbeat details. After shipping, the
  order waits for its delivery report itself for the first tracking period
  and starts a tracking child only if delivery takes longer.

An order whose partners answer at once reaches SHIPPED in its first workflow
task: one task instead of ten before these patches (four under
`local-steps` alone). A workflow task holds back updates, cancellations and
queries while its local activities run; a local step is one attempt of at
most STEP_TIMEOUT, the workflow waits out the pause between attempts on a
timer, and the SDK ends a task that runs longer than 80% of the workflow's
task timeout, so what arrived meanwhile is handled in the next one. The
guarantees hold: each step is idempotent downstream (the payment key,
versions, per-order reservations and shipments), and a worker that dies
mid-step has its workflow task retried elsewhere, which runs the steps of
that task again with the same keys.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.exceptions import CancelledError as StepCancelled

from worker.patches import (
    ARRIVAL_ORDER_PATCH,
    ENGINE_CANCEL_IGNORED_PATCH,
    FIRST_WRITE_PATCH,
    LOCAL_STEPS_PATCH,
    ONE_TASK_PATCH,
    RETRY_NOW_PATCH,
    SHIPPED_RECORD_PATCH,
    STEP_RECORDS_PATCH,
    STOPPED_WRITE_PATCH,
    TRACKING_CHILD_PATCH,
    newest_marker,
    takes,
)
from worker.saga import STEP_FAILURES, Compensation, Steps, failure_reason

with workflow.unsafe.imports_passed_through():
    from clients.errors import Reason
    from clients.proto.orders.v1 import orders_pb2
    from worker import contract
    from worker.activities import OrderActivities
    from worker.model import (
        CANCELLED_FIRST,
        NOT_STORED,
        REFUSED,
        SHIPPED_STATES,
        UNWRITTEN,
        Address,
        ChargeInput,
        OrderInput,
        Progress,
        ReserveInput,
        Shipped,
        ShippingInput,
        TrackingInput,
        new_order,
    )
    from worker.tracking import DeliveryTrackingWorkflow, tracking_id

State = orders_pb2.OrderState

# How long arranging the shipping may take (the other steps take the
# engine's STEP_TIMEOUT and STEP_DEADLINE, worker/saga.py).
SHIPPING_TIMEOUT = timedelta(minutes=30)
# A worker that dies mid-booking is noticed this fast; the retry resumes
# from the last heartbeat.
SHIPPING_HEARTBEAT = timedelta(seconds=5)


# Projection writes retry a lost database for as long as it takes; content
# the database refuses fails at once (non-retryable, see record_order).
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
RECORD_TIMEOUT = timedelta(seconds=10)
# Room for the projection writes of one workflow task (see `_next_version`);
# with Temporal's 51,200-event history limit, versions stay within int32.
VERSIONS_PER_TASK = 1000

UNDOING_OR_ENDED = (
    State.ORDER_STATE_CANCELLED,
    State.ORDER_STATE_FAILED,
    State.ORDER_STATE_CANCELLING,
    State.ORDER_STATE_COMPENSATING,
)
BEFORE_SHIPPING = (State.ORDER_STATE_PENDING, State.ORDER_STATE_RESERVED, State.ORDER_STATE_PAID)


def _rejected(reason: Reason, message: str) -> ApplicationError:
    return ApplicationError(message, type=reason.value, non_retryable=True)


@workflow.defn(name=contract.NAME)
class OrderWorkflow:
    @staticmethod
    def workflow_id_for(order: OrderInput) -> str:
        """An order's workflow runs under the order's id, and acts on no other order."""
        return order.order_id

    @workflow.init
    def __init__(self, order: OrderInput) -> None:
        self._input = order
        accepted = (
            datetime.fromtimestamp(order.accepted_at, UTC) if order.accepted_at else workflow.now()
        )
        self._order = new_order(order, accepted)
        self._order.update_time.FromDatetime(workflow.now())
        self._version = 0
        # Decided before any handler runs, so that every command of this run,
        # an early update's included, takes the same path.
        newest = newest_marker()
        self._every_patch = newest is not None
        self._shipped_record = takes(newest, SHIPPED_RECORD_PATCH)
        self._first_write_in_reserve = takes(newest, FIRST_WRITE_PATCH)
        if self._every_patch:
            self._local_steps = self._one_task = self._fenced = self._step_records = True
            retry_now = True
        else:
            self._local_steps = workflow.patched(LOCAL_STEPS_PATCH)
            self._one_task = self._local_steps and workflow.patched(ONE_TASK_PATCH)
            self._fenced = self._one_task and workflow.patched(ARRIVAL_ORDER_PATCH)
            self._step_records = self._fenced and workflow.patched(STEP_RECORDS_PATCH)
            # Runs started before it replay their pauses as timers, whatever
            # `retry_now` signals their history holds.
            retry_now = workflow.patched(RETRY_NOW_PATCH)
        self._steps = Steps(
            local=self._local_steps,
            retry_now=retry_now,
            stopping=lambda: self._cancel_requested,
            on_attention=self._flag_attention,
        )
        self._persisted = False
        # Why the order was refused before it was ever stored, if it was.
        self._refusal: ApplicationError | None = None
        self._projection_stale = False
        self._cancel_requested = False
        self._cancel_recorded = False
        self._delivery_reported = False
        self._delivery_recorded = False
        # What the order waits for once shipped, for the progress query (the
        # steps say what they run themselves).
        self._waiting_for = ""
        self._tracking: workflow.ChildWorkflowHandle[DeliveryTrackingWorkflow, None] | None = None

    # ----------------------------------------------------------------- run

    @workflow.run
    async def run(self, order: OrderInput) -> orders_pb2.Order:
        # The saga runs in a task of its own that cancelling the workflow
        # cannot interrupt. Orders are cancelled through the front door (the
        # `cancel` update, sealed and checked); a cancellation sent to the
        # workflow through Temporal, which anyone who reaches Temporal can
        # send, changes nothing. Before that patch it was taken as a request
        # to cancel the order.
        saga = asyncio.create_task(self._saga())
        while True:
            try:
                return await asyncio.shield(saga)
            except asyncio.CancelledError:
                if saga.done():
                    raise
                if self._every_patch or workflow.patched(ENGINE_CANCEL_IGNORED_PATCH):
                    workflow.logger.warning(
                        "workflow cancellation ignored: orders are cancelled through CancelOrder"
                    )
                    workflow.metric_meter().create_counter(
                        "workflow_messages_refused_total",
                        "Workflow starts, updates and signals refused for a missing or wrong seal",
                    ).add(1, {"kind": "cancel", "workflow_type": workflow.info().workflow_type})
                    continue
                refusal = self._cancel_refusal()
                if refusal is None:
                    self._request_cancel("workflow cancelled")
                else:
                    workflow.logger.warning(
                        "workflow cancellation ignored", extra={"why": refusal.message}
                    )

    async def _saga(self) -> orders_pb2.Order:
        if not self._first_write_in_reserve:  # else the reserve step stores the order
            try:
                await self._record()
            except STEP_FAILURES as error:
                await self._refuse(error)
            self._persisted = True
        steps = asyncio.create_task(self._fulfil())
        await workflow.wait_condition(lambda: steps.done() or self._cancel_requested)
        if self._cancel_requested:
            steps.cancel()
            await self._record_cancelling(steps)
        await workflow.wait_condition(steps.done)
        failure = steps.exception() if not steps.cancelled() else None
        if not self._persisted:
            # The order's first write failed for good, before any step: the
            # reserve step reserves only once the order is stored.
            assert failure is not None
            if not isinstance(failure, STEP_FAILURES):
                raise failure  # a bug: fail the workflow task and retry it
            await self._refuse(failure)

        if self._cancel_requested:
            self._undo_every_step()
            await self._steps.compensate()
            await self._advance(State.ORDER_STATE_CANCELLED)
        elif failure is not None:
            if not isinstance(failure, STEP_FAILURES):
                raise failure  # a bug: fail the workflow task and retry it
            reason, message = failure_reason(failure)
            workflow.logger.warning("order step failed", extra={"reason": reason})
            self._order.failure.reason = reason
            self._order.failure.message = message
            self._undo_every_step()
            await self._advance(State.ORDER_STATE_COMPENSATING)
            await self._steps.compensate()
            await self._advance(State.ORDER_STATE_FAILED)
        else:
            if self._one_task:
                await self._await_delivery()
            elif workflow.patched(TRACKING_CHILD_PATCH):
                await self._track_delivery()
            else:
                await workflow.wait_condition(lambda: self._delivery_reported)
            await self._advance(State.ORDER_STATE_DELIVERED)
            self._delivery_recorded = True
        self._record_outcome()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._order

    async def _record_cancelling(self, steps: asyncio.Task[None]) -> None:
        """Writes the order as CANCELLING; before it was stored, that write stores it.

        (Under first-write-in-reserve, a cancellation can arrive while the
        reserve step makes the order's first write.) A write that fails for
        good then means the order cannot be stored, nor was its first write
        made: nothing was reserved, and the order is refused.
        """
        try:
            await self._record()
        except STEP_FAILURES as error:
            await workflow.wait_condition(steps.done)
            await self._refuse(error)
        self._persisted = True
        self._cancel_recorded = True

    async def _refuse(self, error: BaseException) -> None:
        """Ends an order that cannot even be stored: nothing has happened to it yet.

        The workflow fails with the reason, so the order shows as failed in
        Temporal and in the metrics rather than retrying a write that can
        never succeed; a repeat of CreateOrder answers with that reason (and
        so does the `accept` update of an earlier front door).
        """
        reason, message = failure_reason(error)
        workflow.logger.error("order refused: it cannot be stored", extra={"error": message})
        self._refusal = ApplicationError(message, type=reason, non_retryable=True)
        self._order.state = State.ORDER_STATE_FAILED
        self._order.failure.reason = reason
        self._order.failure.message = message
        self._record_outcome()
        await workflow.wait_condition(workflow.all_handlers_finished)
        raise self._refusal

    async def _await_delivery(self) -> None:
        """Waits for the delivery report here, handing the wait to a child if it takes long.

        Most orders are delivered within a tracking period, and a tracking
        child costs a workflow start and its tasks. So the order waits in
        place for the first period (or until it is due to escalate, if that
        comes first), on one timer; only then does a child take over, which
        continues as new each period and escalates, counting from the time
        the order shipped.
        """
        shipped_at = workflow.now()
        first_wait = min(self._input.tracking_period_seconds, self._input.escalate_after_seconds)
        self._waiting_for = "track_delivery"
        try:
            await workflow.wait_condition(
                lambda: self._delivery_reported, timeout=timedelta(seconds=first_wait)
            )
        except TimeoutError:
            await self._track_delivery(shipped_at)
        self._waiting_for = ""

    async def _track_delivery(self, shipped_at: datetime | None = None) -> None:
        """Hands the wait for the delivery report to a long-lived child workflow."""
        self._tracking = await workflow.start_child_workflow(
            DeliveryTrackingWorkflow.run,
            TrackingInput(
                order_id=self._input.order_id,
                shipped_at_epoch=(shipped_at or workflow.now()).timestamp(),
                period_seconds=self._input.tracking_period_seconds,
                escalate_after_seconds=self._input.escalate_after_seconds,
            ),
            id=tracking_id(self._input.order_id),
        )
        self._waiting_for = "track_delivery"  # from here on, the child is there to ask
        if self._delivery_reported:  # reported while the child was starting
            await self._tracking.signal(DeliveryTrackingWorkflow.report_delivery)
        try:
            await self._tracking
        except ChildWorkflowError as error:
            # Tracking ended without a report (an operator terminated it, say):
            # the order still waits for its delivery report, here.
            workflow.logger.error(
                "delivery tracking ended early; waiting for the report here",
                extra={"error": str(error.cause or error)},
            )
            self._tracking = None
            await workflow.wait_condition(lambda: self._delivery_reported)
        self._waiting_for = ""

    def _record_outcome(self) -> None:
        """Business metrics of a finished order (replay-safe: the SDK's meter)."""
        meter = workflow.metric_meter()
        state = State.Name(self._order.state).removeprefix("ORDER_STATE_").lower()
        labels = {"state": state, "reason": self._order.failure.reason or "none"}
        meter.create_counter("orders_completed_total", "Orders that reached a terminal state").add(
            1, labels
        )
        meter.create_histogram_float(
            "order_duration_seconds",
            "From acceptance to a terminal state",
            unit="s",
        ).record(
            (
                workflow.now() - self._order.create_time.ToDatetime(tzinfo=workflow.now().tzinfo)
            ).total_seconds(),
            labels,
        )

    async def _fulfil(self) -> None:
        order = self._input
        self._steps.add_compensation(
            Compensation("release_stock", OrderActivities.release_stock, order.order_id)
        )
        reserve = ReserveInput(order.order_id, order.lines)
        if self._first_write_in_reserve:
            await self._store_and_reserve(reserve)
        elif self._step_records:
            written = await self._run_step_and_record(
                OrderActivities.reserve_stock_and_record, reserve, State.ORDER_STATE_RESERVED
            )
            await self._after_step_write(written)
        else:
            await self._run_step(OrderActivities.reserve_stock, reserve, local=True)
            await self._advance(State.ORDER_STATE_RESERVED)

        self._steps.add_compensation(
            Compensation("refund_payment", OrderActivities.refund_payment, order.order_id)
        )
        charge = ChargeInput(
            order.order_id,
            order.currency_code,
            self._order.total.amount_minor,
            payment_token=order.payment_token,
            payment_method_id=order.payment_method_id,
        )
        if self._step_records:
            charged = await self._run_step_and_record(
                OrderActivities.charge_payment_and_record, charge, State.ORDER_STATE_PAID
            )
            self._order.payment_id = charged.payment_id
            await self._after_step_write(charged.written)
        else:
            charged = await self._run_step(
                OrderActivities.charge_payment, charge, local=self._one_task
            )
            self._order.payment_id = charged.payment_id
            await self._advance(State.ORDER_STATE_PAID)

        # Committing needs no compensation of its own: release_stock puts
        # committed goods back on the shelf too.
        if self._step_records:
            written = await self._run_step_and_record(
                OrderActivities.commit_stock_and_record, order.order_id, State.ORDER_STATE_SHIPPING
            )
            await self._after_step_write(written)
        else:
            await self._run_step(OrderActivities.commit_stock, order.order_id, local=True)
            await self._advance(State.ORDER_STATE_SHIPPING)

        self._steps.add_compensation(
            Compensation("cancel_shipment", OrderActivities.cancel_shipment, order.order_id)
        )
        shipping = ShippingInput(
            order.order_id,
            order.address,
            sum(x.quantity for x in order.lines),
            fenced=self._fenced,
        )
        shipped = None
        if self._shipped_record:
            # Most carriers confirm in their answer; None: still booking.
            shipped = await self._book_and_record(shipping)
        elif self._one_task:
            shipped = await self._run_step(OrderActivities.book_shipment, shipping, local=True)
        if shipped is None:
            shipped = await self._run_step(
                OrderActivities.arrange_shipping,
                dataclasses.replace(shipping, requested=self._one_task),
                start_to_close_timeout=SHIPPING_TIMEOUT,
                schedule_to_close_timeout=SHIPPING_TIMEOUT * 2,
                heartbeat_timeout=SHIPPING_HEARTBEAT,
            )
        self._order.tracking_number = shipped.tracking_number
        if shipped.address is not None:
            # Fenced: the address accepted last before the booking was sent.
            self._input.address = shipped.address
            self._order.shipping_address.CopyFrom(shipped.address.to_proto())
        # Set before any later write: from here on, cancelling is refused.
        if shipped.written:
            self._order.state = State.ORDER_STATE_SHIPPED
            self._order.update_time.FromDatetime(workflow.now())
            await self._after_step_write(shipped.written)
        else:
            await self._advance(State.ORDER_STATE_SHIPPED)

    async def _store_and_reserve(self, reserve: ReserveInput) -> None:
        """Stores the new order and reserves its stock in one local step.

        The first-write-in-reserve patch. The step's activity makes the
        order's first write (PENDING, under the version taken here; nothing to
        write when the front door stored it for this run), which stores it and
        finds out whether it belongs to this run; it reserves only once that
        write is made, then writes the order as reserved, under the next
        version: one local activity where the first write and the step took
        two. A first write that was not made (NOT_STORED) reserved nothing:
        refused for good, it refuses the order (see `_saga`); with the
        database out of reach, the workflow stores the order with its own
        write, which retries for as long as it takes, and then reserves.
        """
        first = self._next_version()
        self._version = first + 1  # the reserved order's
        self._order.update_time.FromDatetime(workflow.now())
        snapshot = orders_pb2.Order()
        snapshot.CopyFrom(self._order)
        try:
            written = await self._run_step(
                OrderActivities.store_reserve_and_record,
                reserve,
                local=True,
                step="reserve_stock",
                more_args=(snapshot, first, self._input.fingerprint),
            )
        except STEP_FAILURES as error:
            cause = error.cause if isinstance(error, ActivityError) else error
            if not (isinstance(cause, ApplicationError) and cause.type == NOT_STORED):
                # The step failed after the first write; one stopped by a
                # cancellation may not have made it, and the CANCELLING
                # write stores the order instead.
                self._persisted = self._persisted or not isinstance(cause, StepCancelled)
                raise
            refused = cause.details[0] if cause.details else ""
            if refused:
                raise ApplicationError(cause.message, type=refused, non_retryable=True) from None
            await self._record()
            self._persisted = True
            written = await self._run_step_and_record(
                OrderActivities.reserve_stock_and_record, reserve, State.ORDER_STATE_RESERVED
            )
        else:
            self._persisted = True
            self._order.state = State.ORDER_STATE_RESERVED
            self._order.update_time.FromDatetime(workflow.now())
        await self._after_step_write(written)

    async def _book_and_record(self, shipping: ShippingInput) -> Shipped | None:
        """Books the shipment in a local step that writes the order as shipped once confirmed.

        The shipped-record patch, as `_run_step_and_record` for the steps
        before: the version is taken before the step, so that every later
        write is newer than the one it may make. A booking still in progress
        writes nothing and leaves its version unused.
        """
        self._version = self._next_version()
        snapshot = orders_pb2.Order()
        snapshot.CopyFrom(self._order)
        snapshot.state = State.ORDER_STATE_SHIPPED
        snapshot.update_time.FromDatetime(workflow.now())
        shipped: Shipped | None = await self._run_step(
            OrderActivities.book_shipment_and_record,
            shipping,
            local=True,
            step="book_shipment",
            more_args=(snapshot, self._version, self._input.fingerprint),
        )
        return shipped

    async def _run_step(
        self, activity: Callable[..., Any], arg: Any, *, local: bool = False, **options: Any
    ) -> Any:
        """Runs a forward step (`Steps.run`); stops the saga if a cancellation arrived meanwhile.

        A fenced step that found a cancellation the front door took before it
        (CANCELLED_FIRST) did not go on: the order is cancelled.
        """
        try:
            return await self._steps.run(activity, arg, local=local, **options)
        except STEP_FAILURES as error:
            if failure_reason(error)[0] != CANCELLED_FIRST:
                raise
            self._request_cancel("cancelled before the booking")
            raise asyncio.CancelledError from None

    async def _run_step_and_record(
        self, activity: Callable[..., Any], arg: Any, state: orders_pb2.OrderState.ValueType
    ) -> Any:
        """Runs a local step whose activity then writes the order, moved on to `state`.

        The step-records patch: one local activity (a marker, a payload, a
        span) instead of two. The version is taken before the step, so that
        every later write is newer than the one the step may make, even when
        a cancellation stops the saga as the step returns. The activity
        fills in what only the step knows (the payment id).
        """
        self._version = self._next_version()
        snapshot = orders_pb2.Order()
        snapshot.CopyFrom(self._order)
        snapshot.state = state
        snapshot.update_time.FromDatetime(workflow.now())
        name = activity.__name__.removesuffix("_and_record")
        result = await self._run_step(
            activity,
            arg,
            local=True,
            step=name,
            more_args=(snapshot, self._version, self._input.fingerprint),
        )
        self._order.state = state
        self._order.update_time.FromDatetime(workflow.now())
        return result

    async def _after_step_write(self, written: str) -> None:
        """What a step's own write left to do (worker/model.py, WRITTEN)."""
        if written == UNWRITTEN:
            await self._record()
        elif written == REFUSED:
            self._projection_refused("the database refused the order's content")

    # -------------------------------------------------------- compensation

    def _undo_every_step(self) -> None:
        """Registers the compensation of every step, whether or not this run reached it.

        Local activities leave no trace in the history until their workflow
        task completes. A task whose worker died may have reserved, charged
        and booked, and the task that replaces it may take another path: a
        cancellation that arrived meanwhile is seen before the first step,
        or a step fails there that had succeeded. What this run registered
        is then less than what was done. So an order being undone undoes
        every step, in reverse order; each compensation is harmless when its
        step never took effect (a release, refund or cancellation by order
        id leaves a tombstone that also refuses a late step).
        """
        if not self._one_task:
            return
        order_id = self._input.order_id
        self._steps.replace_compensations(
            [
                Compensation("release_stock", OrderActivities.release_stock, order_id),
                Compensation("refund_payment", OrderActivities.refund_payment, order_id),
                Compensation("cancel_shipment", OrderActivities.cancel_shipment, order_id),
            ]
        )

    async def _flag_attention(self) -> None:
        """A compensation started or stopped failing: the order's flag follows, and is stored."""
        self._order.attention_required = self._needs_attention()
        await self._record()

    # --------------------------------------------------------- projection

    async def _advance(self, state: orders_pb2.OrderState.ValueType) -> None:
        self._order.state = state
        await self._record()

    async def _record(self) -> None:
        """Writes the order as it is now, under the next version number.

        A write the database refuses for its content fails for good. Before
        the order was ever stored that refuses the order (see `_refuse`);
        after, the saga goes on, and the order is flagged for an operator
        since its projection now lags behind it. A write stopped by the
        cancellation of the saga's steps ends them as cancelled instead.
        """
        self._version = self._next_version()
        self._order.update_time.FromDatetime(workflow.now())
        snapshot = orders_pb2.Order()
        snapshot.CopyFrom(self._order)
        run = (
            workflow.execute_local_activity_method
            if self._local_steps
            else workflow.execute_activity_method
        )
        try:
            await run(
                OrderActivities.record_order,
                args=[snapshot, self._version, self._input.fingerprint],
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
            )
        except STEP_FAILURES as error:
            if not self._persisted:
                raise
            stopped = isinstance(error, ActivityError) and isinstance(error.cause, StepCancelled)
            if stopped and (self._every_patch or workflow.patched(STOPPED_WRITE_PATCH)):
                raise asyncio.CancelledError from None
            self._projection_refused(failure_reason(error)[1])

    def _projection_refused(self, why: str) -> None:
        """The database refused a version of the order for good: it needs an operator."""
        workflow.logger.error(
            "order projection write refused; the order needs an operator",
            extra={"version": self._version, "error": why},
        )
        workflow.metric_meter().create_counter(
            "order_projection_failures_total", "Projection writes refused for good"
        ).add(1)
        self._projection_stale = True
        self._order.attention_required = True

    def _next_version(self) -> int:
        """The projection version of the next write: larger than any written before.

        Counting writes is not enough once they are local activities: a
        workflow task whose worker died may have written versions (and done
        the steps between them) that its retry, taking another path (a
        cancellation arrived meanwhile, say), writes again with other
        contents; equal numbers would make the later writes look stale. So
        each workflow task's versions start above the history's length times
        VERSIONS_PER_TASK: a retried task always sees a longer history than
        the task it replaces, and the same on every replay.
        """
        floor = workflow.info().get_current_history_length() * VERSIONS_PER_TASK
        return max(self._version + 1, floor)

    def _needs_attention(self) -> bool:
        return bool(self._steps.failing) or self._projection_stale

    def _request_cancel(self, reason: str) -> None:
        """Marks the order CANCELLING; the saga stops its steps and undoes them."""
        if self._cancel_requested:
            return
        self._cancel_requested = True
        self._order.state = State.ORDER_STATE_CANCELLING
        workflow.logger.info("order cancellation accepted", extra={"reason": reason})

    def _cancel_refusal(self) -> ApplicationError | None:
        """Why the order cannot be cancelled now, if it cannot."""
        if self._cancel_requested:
            return None
        if self._order.state in SHIPPED_STATES:
            return _rejected(Reason.ALREADY_SHIPPED, "the order has shipped")
        if self._order.state in UNDOING_OR_ENDED:
            return _rejected(Reason.ORDER_FINISHED, "the order has failed or been cancelled")
        return None

    # ------------------------------------------------------------- updates

    @workflow.update(name=contract.ACCEPT.name)
    async def accept(self, fingerprint: str) -> orders_pb2.Order:
        """Returns the order once it is stored.

        CreateOrder's update-with-start of earlier front doors; today's start
        the workflow and store the accepted order themselves. Kept for orders
        that such a front door may still be placing during a deploy.
        """
        await workflow.wait_condition(lambda: self._persisted or self._refusal is not None)
        if self._refusal is not None:
            raise self._refusal
        return self._order

    @accept.validator
    def _validate_accept(self, fingerprint: str) -> None:
        if fingerprint != self._input.fingerprint:
            raise _rejected(
                Reason.REQUEST_ID_REUSED, "this request_id was already used for a different request"
            )

    @workflow.update(name=contract.CANCEL.name)
    async def cancel(self, reason: str) -> orders_pb2.Order:
        """Cancels the order; returns once CANCELLING is stored."""
        self._request_cancel(reason or "cancelled by request")
        await workflow.wait_condition(lambda: self._cancel_recorded or self._refusal is not None)
        if self._refusal is not None:  # the order could not be stored (`_record_cancelling`)
            raise self._refusal
        return self._order

    @cancel.validator
    def _validate_cancel(self, reason: str) -> None:
        refusal = self._cancel_refusal()
        if refusal is not None:
            raise refusal

    @workflow.update(name=contract.UPDATE_SHIPPING_ADDRESS.name)
    async def update_shipping_address(self, address: Address) -> orders_pb2.Order:
        if self._local_steps:
            # The change is written after the order itself, never before it.
            await workflow.wait_condition(lambda: self._persisted or self._refusal is not None)
            if self._refusal is not None:
                raise self._refusal
        self._input.address = address
        self._order.shipping_address.CopyFrom(address.to_proto())
        await self._record()
        return self._order

    @update_shipping_address.validator
    def _validate_address(self, address: Address) -> None:
        if self._cancel_requested or self._order.state in UNDOING_OR_ENDED:
            raise _rejected(Reason.ORDER_FINISHED, "the order has failed or been cancelled")
        if self._order.state not in BEFORE_SHIPPING:
            raise _rejected(Reason.ALREADY_SHIPPED, "the order is already being shipped")

    @workflow.update(name=contract.CONFIRM_DELIVERY.name)
    async def confirm_delivery(self) -> orders_pb2.Order:
        if not self._delivery_reported:
            self._delivery_reported = True
            if self._tracking is not None:
                try:
                    await self._tracking.signal(DeliveryTrackingWorkflow.report_delivery)
                except ApplicationError:
                    pass  # tracking has ended; the saga takes the report itself
        await workflow.wait_condition(lambda: self._delivery_recorded)
        return self._order

    @confirm_delivery.validator
    def _validate_delivery(self) -> None:
        if self._cancel_requested or self._order.state in UNDOING_OR_ENDED:
            raise _rejected(Reason.ORDER_FINISHED, "the order has failed or been cancelled")
        if self._order.state not in SHIPPED_STATES:
            raise _rejected(Reason.NOT_SHIPPED, "the order has not shipped yet")

    # ------------------------------------------------------------- signals

    @workflow.signal(name=contract.CANCEL_ORDER.name)
    def cancel_order(self, reason: str) -> None:
        """A cancellation the front door has taken and stored (server/orders/changes.py).

        Sent only for orders whose changes are fenced: the front door answered
        the caller already, having checked in the database that the carrier
        had not confirmed the booking, so it is honoured even while a step
        runs; a fenced step that it raced stops with CANCELLED_FIRST.
        """
        refusal = self._cancel_refusal()
        if refusal is not None:
            workflow.logger.warning(
                "cancellation ignored", extra={"why": refusal.message, "reason": reason[:200]}
            )
            return
        self._request_cancel(reason or "cancelled by request")

    @workflow.signal(name=contract.RETRY_NOW.name)
    def retry_now(self) -> None:
        """From an operator (OperatorService.RetryStep): try the step or compensation again now.

        Taken only while something is being retried (see `Steps.retry_now`).
        """
        if self._steps.retry_now():
            workflow.logger.info(
                "retry asked for by an operator", extra={"step": self._steps.current}
            )

    @workflow.signal(name=contract.DELIVERY_OVERDUE.name)
    async def delivery_overdue(self) -> None:
        """From the tracking workflow: no delivery report in the allowed time."""
        if self._order.state == State.ORDER_STATE_SHIPPED and not self._delivery_reported:
            workflow.logger.warning("delivery overdue", extra={"order_id": self._input.order_id})
            await self._advance(State.ORDER_STATE_DELIVERY_OVERDUE)

    # ------------------------------------------------------------- queries

    @workflow.query(name=contract.ORDER.name)
    def order(self) -> orders_pb2.Order:
        return self._order

    @workflow.query(name=contract.PROGRESS.name)
    def progress(self) -> Progress:
        return Progress(
            current_step=self._steps.current or self._waiting_for,
            pending_compensations=self._steps.pending,
            failing_compensations=self._steps.failing,
            cancel_requested=self._cancel_requested,
            current_step_attempt=self._steps.attempt,
            last_attempt_failure=self._steps.last_failure,
        )
