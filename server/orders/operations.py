"""operator.v1.OperatorService: finding the orders that need a person, and repairing them.

Served by the orders process beside OrderService (it owns the projection,
which is the search's index), to operators only (server/core/auth/policy.py).

* SearchOrders reads the projection (`OrderRepository.search`), newest
  first, with the page tokens of ListOrders bound to the filters.
* GetOrderDetail puts together what the platform knows of one order: the
  stored order; its workflow's progress, as GetOrder's full view reads it
  (bounded, with its `busy` answer); the workflow's status from Temporal's
  describe; what the order holds at the partners (`Holdings`, as the sweep
  for abandoned orders reads it); its changes of state; the operators'
  actions on it.
* The actions are idempotent by request_id and recorded
  (server/orders/operator_actions.py). RetryStep sends the workflow the
  `retry_now` signal; CancelAndCompensate cancels through CancelOrder's own
  path; MarkResolved clears the attention flag in the projection.

RetryStep sends its signal whatever the workflow's release: Temporal takes
a signal for which a workflow has no handler and keeps it unhandled, so
nothing breaks, and a release that handles it needs no change here. Whether
the workflow handles it is read from the SDK's built-in
`__temporal_workflow_metadata` query and said in the recorded result.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from clients.errors import Error, Reason
from clients.proto.operator.v1 import operator_pb2 as op
from clients.proto.operator.v1 import operator_pb2_grpc
from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import caller
from server.core.validation import Violations
from server.orders.abandoned import Holdings
from server.orders.gateway import WorkflowGateway, WorkflowRun
from server.orders.operator_actions import Action, Asked, Kind, OperatorActions
from server.orders.reads import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from server.orders.repository import (
    OrderRepository,
    SearchFilters,
    StoredOrder,
    encode_cursor,
    page_after,
)
from worker.contract import RETRY_NOW
from worker.model import TERMINAL_STATES

log = structlog.get_logger(__name__)

MAX_NOTE = 1000
# A cancellation's reason is at most this long (CancelOrder's limit).
MAX_CANCEL_REASON = 500

Progress = Callable[[StoredOrder], Coroutine[Any, Any, pb.OrderProgress]]
Cancel = Callable[[str, str], Coroutine[Any, Any, pb.Order]]


def _workflow_status(description: WorkflowRun | None) -> op.WorkflowStatus.ValueType:
    if description is None:
        return op.WORKFLOW_STATUS_NOT_FOUND
    name = f"WORKFLOW_STATUS_{description.status}" if description.status else ""
    if name not in op.WorkflowStatus.keys():
        return op.WORKFLOW_STATUS_UNSPECIFIED
    return op.WorkflowStatus.Value(name)


def _timestamp(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _workflow_ended(order_id: str) -> Error:
    return Error(
        Reason.WORKFLOW_ENDED,
        "the order's workflow has ended outside the saga: nothing runs to act on it; "
        "GetOrderDetail says what it holds",
        {"order_id": order_id},
    )


def _retry_result(progress: pb.OrderProgress, handles: bool | None) -> str:
    """What RetryStep did, for the record."""
    if handles is None:
        sent = "sent retry_now (the workflow did not say in time whether it handles it)"
    elif handles:
        sent = "asked the workflow to retry now"
    else:
        sent = (
            "sent retry_now, which this order's workflow does not handle yet: "
            "it retries on its own schedule"
        )
    if progress.busy:
        return f"{sent}; it was in the middle of {progress.current_step or 'a step'}"
    waiting = []
    if progress.failing_compensations:
        waiting.append(f"failing compensations: {', '.join(progress.failing_compensations)}")
    if progress.current_step and progress.current_step_attempt > 1:
        step = f"{progress.current_step} at attempt {progress.current_step_attempt}"
        if progress.last_attempt_failure:
            step += f" (last failure: {progress.last_attempt_failure[:200]})"
        waiting.append(step)
    return f"{sent}; {'; '.join(waiting) if waiting else 'nothing was waiting to be retried'}"


class OperatorServicer(operator_pb2_grpc.OperatorServiceServicer):
    def __init__(
        self,
        *,
        workflows: WorkflowGateway,
        orders: OrderRepository,
        actions: OperatorActions,
        holdings: Holdings,
        progress: Progress,
        cancel: Cancel,
    ) -> None:
        self._workflows = workflows
        self._orders = orders
        self._actions = actions
        self._holdings = holdings
        # GetOrder's full view (server/orders/reads.py) and CancelOrder's way
        # (server/orders/changing.py).
        self._progress = progress
        self._cancel = cancel

    # ------------------------------------------------------------- search

    async def SearchOrders(
        self, request: op.SearchOrdersRequest, context: grpc.aio.ServicerContext
    ) -> op.SearchOrdersResponse:
        errors = Violations()
        errors.optional("customer_id", request.customer_id, max_length=128)
        errors.optional("failure_reason", request.failure_reason, max_length=128)
        if request.page_size < 0:
            errors.add("page_size", "must not be negative")
        known = set(pb.OrderState.values()) - {pb.ORDER_STATE_UNSPECIFIED}
        if not set(request.states) <= known:
            errors.add("states", "lists a value that is not an order state")
        min_age = request.min_age_in_state.ToTimedelta()
        if min_age < timedelta(0):
            errors.add("min_age_in_state", "must not be negative")
        after = _time(
            errors,
            "created_after",
            request.created_after if request.HasField("created_after") else None,
        )
        before = _time(
            errors,
            "created_before",
            request.created_before if request.HasField("created_before") else None,
        )
        if after is not None and before is not None and after >= before:
            errors.add("created_before", "must be later than created_after")
        filters = SearchFilters(
            states=sorted(pb.OrderState.Name(s) for s in set(request.states) & known),
            customer_id=request.customer_id,
            min_age=min_age if min_age > timedelta(0) else None,
            attention_only=request.attention_required_only,
            failure_reason=request.failure_reason,
            created_after=after,
            created_before=before,
        )
        filter_key = _filter_key(filters)
        cursor = page_after(request.page_token, filter_key, errors)
        errors.raise_if_any()
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        page = await self._orders.search(filters, limit=size + 1, after=cursor)
        more = len(page) > size
        page = page[:size]
        return op.SearchOrdersResponse(
            orders=[order for order, _ in page],
            next_page_token=encode_cursor(page[-1][1], filter_key) if more else "",
        )

    # ------------------------------------------------------------- detail

    async def GetOrderDetail(
        self, request: op.GetOrderDetailRequest, context: grpc.aio.ServicerContext
    ) -> op.GetOrderDetailResponse:
        Violations().require("order_id", request.order_id).raise_if_any()
        stored = await self._stored(request.order_id)
        order_id = request.order_id
        # Read side by side; the first to fail fails the call, and stops the others.
        try:
            async with asyncio.TaskGroup() as group:
                described = group.create_task(self._workflows.describe(order_id))
                progressed = group.create_task(self._progress(stored))
                holdings = group.create_task(self._holdings.read(order_id))
                history = group.create_task(self._orders.state_changes(order_id))
                recorded = group.create_task(self._actions.of_order(order_id))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        description, progress, held = described.result(), progressed.result(), holdings.result()
        changes, actions = history.result(), recorded.result()
        detail = op.GetOrderDetailResponse(
            order=stored.order,
            progress=progress,
            workflow_status=_workflow_status(description),
            workflow_start_time=_timestamp(description.start_time if description else None),
            workflow_close_time=_timestamp(description.close_time if description else None),
            payments=held.payments,
            reservation=held.reservation,
            shipment=held.shipment,
            holdings_unknown=held.unknown,
            actions=[action.to_proto() for action in actions],
        )
        for state, recorded_at in changes:
            detail.state_changes.add(state=state).record_time.FromDatetime(recorded_at)
        return detail

    # ------------------------------------------------------------ actions

    async def RetryStep(
        self, request: op.RetryStepRequest, context: grpc.aio.ServicerContext
    ) -> op.RetryStepResponse:
        asked = _asked(request, Kind.RETRY_STEP)
        action = await self._actions.find(asked)
        if action is None:
            stored = await self._stored(asked.order_id)
            if stored.order.state in TERMINAL_STATES:
                raise Error(
                    Reason.ORDER_FINISHED,
                    "the order has ended: nothing is left to retry",
                    {"order_id": asked.order_id},
                )
            # Read first: what the workflow was waiting to retry when asked.
            progress = await self._progress(stored)
            if not await self._workflows.signal(asked.order_id, RETRY_NOW):
                raise _workflow_ended(asked.order_id)
            handles = await self._workflows.handles_signal(asked.order_id, RETRY_NOW)
            result = _retry_result(progress, handles)
            action = await self._recorded(asked, result)
        return op.RetryStepResponse(
            action=action.to_proto(), order=await self._latest(asked.order_id)
        )

    async def CancelAndCompensate(
        self, request: op.CancelAndCompensateRequest, context: grpc.aio.ServicerContext
    ) -> op.CancelAndCompensateResponse:
        asked = _asked(request, Kind.CANCEL_AND_COMPENSATE)
        action = await self._actions.find(asked)
        if action is None:
            stored = await self._stored(asked.order_id)
            if stored.order.state not in TERMINAL_STATES:
                # Before anything is stored: a cancellation nothing would carry
                # out is refused, not kept.
                description = await self._workflows.describe(asked.order_id)
                if description is None or not description.running:
                    raise _workflow_ended(asked.order_id)
            order = await self._cancel(asked.order_id, asked.note[:MAX_CANCEL_REASON])
            state = pb.OrderState.Name(order.state).removeprefix("ORDER_STATE_")
            result = (
                "the order was already CANCELLED"
                if stored.order.state == pb.ORDER_STATE_CANCELLED
                else f"cancellation accepted: the order is {state}"
            )
            action = await self._recorded(asked, result)
        return op.CancelAndCompensateResponse(
            action=action.to_proto(), order=await self._latest(asked.order_id)
        )

    async def MarkResolved(
        self, request: op.MarkResolvedRequest, context: grpc.aio.ServicerContext
    ) -> op.MarkResolvedResponse:
        asked = _asked(request, Kind.MARK_RESOLVED)
        action = await self._actions.find(asked)
        if action is None:
            action = await self._actions.resolve(asked)
            _log_action(action)
        return op.MarkResolvedResponse(
            action=action.to_proto(), order=await self._latest(asked.order_id)
        )

    # ------------------------------------------------------------ helpers

    async def _recorded(self, asked: Asked, result: str) -> Action:
        action = await self._actions.record(asked, result)
        _log_action(action)
        return action

    async def _stored(self, order_id: str) -> StoredOrder:
        stored = await self._orders.get(order_id)
        if stored is None:
            raise Error(Reason.ORDER_NOT_FOUND, f"no order {order_id}", {"order_id": order_id})
        return stored

    async def _latest(self, order_id: str) -> pb.Order:
        return (await self._stored(order_id)).order


def _asked(
    request: op.RetryStepRequest | op.CancelAndCompensateRequest | op.MarkResolvedRequest,
    kind: Kind,
) -> Asked:
    """The action asked for, once its request is checked; by the caller of this call."""
    errors = Violations().require("request_id", request.request_id)
    errors.require("order_id", request.order_id)
    if not request.note.strip():
        errors.add("note", "is required: say why, for the record")
    else:
        errors.optional("note", request.note, max_length=MAX_NOTE, multiline=True)
    errors.raise_if_any()
    return Asked(caller().subject, request.request_id, request.order_id, kind, request.note)


def _log_action(action: Action) -> None:
    log.info(
        "operator action",
        action_id=action.asked.action_id,
        kind=action.asked.kind.value,
        order_id=action.asked.order_id,
        operator=action.asked.operator,
        result=action.result,
    )


def _time(errors: Violations, field: str, stamp: Timestamp | None) -> datetime | None:
    if stamp is None:
        return None
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        errors.add(field, "is not a valid time")
        return None


def _filter_key(filters: SearchFilters) -> str:
    """What a page token is bound to: every filter of the search."""
    document = [
        filters.states,
        filters.customer_id,
        filters.min_age.total_seconds() if filters.min_age else 0,
        filters.attention_only,
        filters.failure_reason,
        filters.created_after.isoformat() if filters.created_after else "",
        filters.created_before.isoformat() if filters.created_before else "",
    ]
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()[:16]
