"""orders.v1.OrderService: the front door.

Requests are validated here, synchronously; the work itself runs in the order
workflow. CreateOrder starts the workflow and stores the accepted order;
every other change goes to the workflow as an update. Reads come from the
Postgres projection the workflow keeps current.

A caller with the customer-service role acts for the one customer its token
names: it places orders for that customer only (PERMISSION_DENIED otherwise),
lists only that customer's orders, and any other customer's order is, to it,
an order that does not exist (NOT_FOUND), so that order ids cannot be probed.
It is told why an order failed in the error vocabulary's words, not in the
failure's own text (disclosure.py). request_ids are each customer's own
(`order_id_for`), so neither can one customer's reveal or take another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

import grpc
import structlog
from google.protobuf import json_format
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients.errors import Error, Reason, decode
from clients.proto.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.orders.v1 import orders_pb2_grpc
from clients.proto.payments.v1 import payments_pb2, payments_pb2_grpc
from server.core.auth import customer_scope
from server.core.grpc_server import answers_serialized, refused_early_by
from server.core.validation import SKU, Violations
from server.orders.admission import Admission, AdmissionLimits, caller_key
from server.orders.cache import OrderCache
from server.orders.changes import OrderChanges, Verdict
from server.orders.disclosure import disclosed, disclosed_progress
from server.orders.events import OrderEvents
from server.orders.listing import list_orders_response
from server.orders.projection import OrderProjection
from server.orders.repository import OrderRepository, StoredOrder, decode_cursor, encode_cursor
from worker import contract as order_workflow
from worker.model import SHIPPED_STATES, TERMINAL_STATES, Address, Line, OrderInput, new_order

log = structlog.get_logger(__name__)

T = TypeVar("T")

MAX_LINES = 100
MAX_QUANTITY = 1_000_000
# Amounts are int64 on the wire.
MAX_AMOUNT_MINOR = 2**63 - 1
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# The projection version of an order as the front door accepted it; the
# workflow's own writes start at 1.
ACCEPTED_VERSION = 0
# Less time than this before the caller's deadline, and no order is placed.
MIN_TIME_TO_PLACE_SECONDS = 0.25
# A watcher re-reads on its own this often, in case a notification was lost.
WATCH_RECHECK_SECONDS = 15.0
# How long a full-view GetOrder waits for the workflow's own account of its
# progress. A workflow in the middle of a step answers only when the step's
# workflow task ends; the read answers from the projection meanwhile.
PROGRESS_WAIT = timedelta(seconds=0.8)
# What ListOrders takes as a state to filter by.
_ORDER_STATES = frozenset(pb.OrderState.values()) - {pb.ORDER_STATE_UNSPECIFIED}
# The step an order in each state is on, when the workflow cannot say.
_STEP_OF_STATE = {
    pb.ORDER_STATE_PENDING: "reserve_stock",
    pb.ORDER_STATE_RESERVED: "charge_payment",
    pb.ORDER_STATE_PAID: "commit_stock",
    pb.ORDER_STATE_SHIPPING: "book_shipment",
}


def order_id_for(customer_id: str, request_id: str) -> str:
    """The order id a customer's request_id maps to; also the order workflow's id.

    request_ids are each customer's own: two customers may use the same one
    and get two orders, and one cannot learn of or take the other's. Orders
    placed before that kept the id of their request_id alone (its SHA-256);
    a repeat finds them in the projection by customer and request_id. Byte
    0xFF never occurs in UTF-8, so these bytes are never those of another
    pair, nor of a request_id hashed alone.
    """
    key = b"\xff" + customer_id.encode() + b"\xff" + request_id.encode()
    return "ord_" + hashlib.sha256(key).hexdigest()[:32]


def fingerprint(request: pb.CreateOrderRequest) -> str:
    """Hash of everything in a CreateOrder request but its request_id."""
    content = json_format.MessageToDict(request, preserving_proto_field_name=True)
    content.pop("request_id", None)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _from_workflow(error: BaseException | None) -> Error:
    """The caller-facing error for a workflow's rejection of an update."""
    if isinstance(error, ApplicationError) and error.type in Reason.__members__:
        return Error(Reason(str(error.type)), error.message)
    log.error("unexpected workflow failure", error=str(error))
    return Error(Reason.INTERNAL, "internal error; the server log has the details")


def temporal_unavailable(error: RPCError) -> Error:
    log.warning("temporal call failed", status=str(error.status), error=str(error))
    return Error(Reason.DEPENDENCY_UNAVAILABLE, "the workflow service is unavailable; retry")


def _bounded_read(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Counts the call among its caller's reads in progress (server/orders/admission.py)."""

    @functools.wraps(method)
    async def bounded(self: OrderServicer, request: Any, context: Any) -> T:
        with self._admission.read(caller_key()):
            return await method(self, request, context)

    return bounded


def _bounded_stream(
    method: Callable[..., AsyncIterator[T]],
) -> Callable[..., AsyncIterator[T]]:
    """Counts the stream among its caller's open streams while it lasts."""

    @functools.wraps(method)
    async def bounded(self: OrderServicer, request: Any, context: Any) -> AsyncIterator[T]:
        with self._admission.stream(caller_key()):
            async for message in method(self, request, context):
                yield message

    return bounded


class OrderServicer(orders_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        *,
        temporal: Client,
        task_queue: str,
        tracking_period: timedelta,
        escalate_after: timedelta,
        workflow_wait: timedelta = timedelta(seconds=10),
        workflow_task_timeout: timedelta = timedelta(seconds=4),
        inventory: inventory_pb2_grpc.InventoryServiceStub,
        payments: payments_pb2_grpc.PaymentServiceStub,
        orders: OrderRepository,
        projection: OrderProjection,
        events: OrderEvents,
        cache: OrderCache | None = None,
        replica: OrderRepository | None = None,
        admission: Admission | None = None,
        changes: OrderChanges | None = None,
    ) -> None:
        self._temporal = temporal
        self._task_queue = task_queue
        self._tracking_period = tracking_period
        self._escalate_after = escalate_after
        self._workflow_wait = workflow_wait
        self._workflow_task_timeout = workflow_task_timeout
        self._inventory = inventory
        self._payments = payments
        self._orders = orders
        self._projection = projection
        self._events = events
        # Without one (tests, tools), every read goes to the database.
        self._cache = cache or OrderCache(size=0)
        # GetOrder and ListOrders may read a replica; every other read is of
        # the primary, which the NOTIFYs come from (docs/scaling.md).
        self._replica = replica
        # Without one (tests, tools), everything is admitted.
        self._admission = admission or Admission(AdmissionLimits(enabled=False))
        self._changes = changes or OrderChanges(orders.pool)

    # ------------------------------------------------------------- create

    def _platform_full(self) -> Error | None:
        return self._admission.platform_refusal()

    @refused_early_by(_platform_full)
    async def CreateOrder(
        self, request: pb.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateOrderResponse:
        scope = customer_scope()
        if scope is not None and request.customer_id and request.customer_id != scope:
            # Checked before it is echoed in the refusal.
            Violations().require("customer_id", request.customer_id).raise_if_any()
            raise Error(
                Reason.PERMISSION_DENIED,
                "a customer service places orders only for the customer in its token",
                {"customer_id": request.customer_id},
            )
        errors = self._check_shape(request)
        content_hash = fingerprint(request)
        if errors:
            return await self._place(request, content_hash, errors, context)
        # Before anything is read, stored or asked of another service: the
        # platform, or this customer's share of it, may be full. A refusal
        # then costs no database connection, which a flood would queue for.
        # (A repeat of an accepted request is refused too, and answered when
        # it comes back.)
        with self._admission.order(scope or request.customer_id):
            # A repeat of an accepted request is answered from the projection.
            existing = await self._orders.get_by_request_id(request.customer_id, request.request_id)
            if existing is not None:
                order = self._same_request(existing, content_hash)
                return disclosed(pb.CreateOrderResponse(order=order))
            return await self._place(request, content_hash, errors, context)

    async def _place(
        self,
        request: pb.CreateOrderRequest,
        content_hash: str,
        errors: Violations,
        context: grpc.aio.ServicerContext,
    ) -> pb.CreateOrderResponse:
        """Prices, checks and places an order (or raises every violation found)."""
        # Limits first: a request the catalog would refuse is not sent to it.
        lines = await self._price(request, errors) if len(request.line_items) <= MAX_LINES else []
        errors.raise_if_any()
        self._check_time_left(context)
        order_id = order_id_for(request.customer_id, request.request_id)
        order_input = OrderInput(
            order_id=order_id,
            request_id=request.request_id,
            fingerprint=content_hash,
            customer_id=request.customer_id,
            currency_code=lines[0][1],
            lines=[line for line, _ in lines],
            address=Address.from_proto(request.shipping_address),
            # The card goes in by reference: the token must not enter the
            # workflow's history.
            payment_method_id=await self._payment_method(request, order_id, content_hash),
            tracking_period_seconds=self._tracking_period.total_seconds(),
            escalate_after_seconds=self._escalate_after.total_seconds(),
            accepted_at=time.time(),
        )
        order = await self._start(order_input)
        log.info(
            "order accepted",
            order_id=order.order_id,
            customer_id=order.customer_id,
            total_minor=order.total.amount_minor,
            currency=order.total.currency_code,
        )
        return disclosed(pb.CreateOrderResponse(order=order))

    async def _payment_method(
        self, request: pb.CreateOrderRequest, order_id: str, content_hash: str
    ) -> str:
        """Hands the card token to the payment service; returns the payment method's id.

        One per order and content: a repeat of the request gets the same one,
        and a request_id reused with other content gets another (which the
        workflow start then refuses as REQUEST_ID_REUSED).
        """
        try:
            response = await self._payments.CreatePaymentMethod(
                payments_pb2.CreatePaymentMethodRequest(
                    request_id=f"{order_id}:{content_hash}",
                    customer_id=request.customer_id,
                    payment_token=request.payment_token,
                    order_id=order_id,
                ),
                timeout=5.0,
            )
        except grpc.aio.AioRpcError as rpc_error:
            error = decode(rpc_error)
            log.warning("storing the payment method failed", reason=error.reason)
            if error.reason.retryable:
                raise Error(
                    Reason.DEPENDENCY_UNAVAILABLE,
                    "the payment service is unavailable; retry",
                    retry_delay=error.retry_delay,
                ) from None
            raise error from None
        return response.payment_method.payment_method_id

    @staticmethod
    def _check_shape(request: pb.CreateOrderRequest) -> Violations:
        errors = (
            Violations()
            .require("request_id", request.request_id)
            .require("customer_id", request.customer_id)
            .require("payment_token", request.payment_token, max_length=200)
        )
        if not request.line_items:
            errors.add("line_items", "at least one line is required")
        elif len(request.line_items) > MAX_LINES:
            errors.add("line_items", f"at most {MAX_LINES} lines")
        for i, line in enumerate(request.line_items):
            errors.sku(f"line_items[{i}].sku", line.sku)
            if not 1 <= line.quantity <= MAX_QUANTITY:
                errors.add(f"line_items[{i}].quantity", f"must be from 1 to {MAX_QUANTITY:,}")
        errors.address(
            "shipping_address", request.shipping_address, request.HasField("shipping_address")
        )
        return errors

    @staticmethod
    def _same_request(existing: StoredOrder, content_hash: str) -> pb.Order:
        if existing.fingerprint != content_hash:
            raise Error(
                Reason.REQUEST_ID_REUSED,
                "this request_id was already used for a different request",
                {"order_id": existing.order.order_id},
            )
        return existing.order

    async def _price(
        self, request: pb.CreateOrderRequest, errors: Violations
    ) -> list[tuple[Line, str]]:
        """Looks each line's SKU up in the catalog; flags unknown SKUs."""
        skus = list(dict.fromkeys(line.sku for line in request.line_items if SKU.match(line.sku)))
        if not skus:
            return []
        try:
            response = await self._inventory.BatchGetStock(
                inventory_pb2.BatchGetStockRequest(skus=skus), timeout=5.0
            )
        except grpc.aio.AioRpcError as rpc_error:
            error = decode(rpc_error)
            log.warning("catalog lookup failed", reason=error.reason, error=error.message)
            if error.reason.retryable:
                raise Error(
                    Reason.DEPENDENCY_UNAVAILABLE,
                    "the catalog is unavailable; retry",
                    retry_delay=error.retry_delay,
                ) from None
            # Never reported as retryable: the same lookup would fail again.
            raise Error(
                Reason.INVALID_ARGUMENT, f"the catalog refused the lookup: {error.message}"
            ) from None
        catalog = {item.sku: item for item in response.items}
        lines: list[tuple[Line, str]] = []
        for i, line in enumerate(request.line_items):
            item = catalog.get(line.sku)
            if item is None and SKU.match(line.sku):
                errors.add(
                    f"line_items[{i}].sku", f"no SKU {line.sku} in the catalog", Reason.UNKNOWN_SKU
                )
            if item is None:
                continue
            if item.unit_price.amount_minor <= 0:
                # The catalog refuses such prices; one stored before it did
                # would make an order that no card can pay.
                errors.add(
                    f"line_items[{i}].sku", f"SKU {line.sku} has no price; it is not for sale"
                )
                continue
            lines.append(
                (
                    Line(line.sku, line.quantity, item.unit_price.amount_minor),
                    item.unit_price.currency_code,
                )
            )
        total = sum(
            line.quantity * line.unit_price_minor
            for line, _ in lines
            if line.quantity <= MAX_QUANTITY  # larger ones are already refused
        )
        if total > MAX_AMOUNT_MINOR:
            errors.add("line_items", "the order's total is too large")
        if len({currency for _, currency in lines}) > 1:
            errors.add(
                "line_items", "all lines must be priced in one currency", Reason.CURRENCY_MISMATCH
            )
        return lines

    @staticmethod
    def _check_time_left(context: grpc.aio.ServicerContext) -> None:
        """Refuses to place an order for a caller whose deadline leaves no time to hear of it.

        Placing it anyway would leave the caller with DEADLINE_EXCEEDED and an
        order it does not know of (it would learn of it only by repeating the
        request_id). A deadline that runs out later still can; see orders.proto.
        """
        left = context.time_remaining()
        if left is not None and left < MIN_TIME_TO_PLACE_SECONDS:
            raise Error(
                Reason.INVALID_ARGUMENT,
                f"the call's deadline leaves {max(left, 0.0) * 1000:.0f} ms; placing an order "
                f"needs at least {MIN_TIME_TO_PLACE_SECONDS * 1000:.0f} ms. Nothing was placed.",
                {"min_deadline_ms": str(int(MIN_TIME_TO_PLACE_SECONDS * 1000))},
            )

    async def _start(self, order_input: OrderInput) -> pb.Order:
        """Starts the order's workflow and stores the order as accepted.

        The answer needs no worker: once Temporal has the workflow, the order
        is durable, and the PENDING row written here makes it readable at
        once (the workflow writes every later version, under versions 1 and
        up). A repeat finds the workflow there and answers from the
        projection; a workflow started but not yet stored (a crash between
        the two writes) is stored by the workflow itself a moment later.
        """
        try:
            handle = await self._temporal.start_workflow(
                order_workflow.NAME,
                order_input,
                result_type=order_workflow.RESULT_TYPE,
                id=order_input.order_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                # A finished order's id is never reused: a late repeat of its
                # request finds it in the projection instead.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                task_timeout=self._workflow_task_timeout,
                rpc_timeout=self._workflow_wait,
            )
        except WorkflowAlreadyStartedError:
            existing = await self._stored_soon(order_input.order_id)
            return self._same_request(existing, order_input.fingerprint)
        except RPCError as rpc_error:
            raise temporal_unavailable(rpc_error) from None
        order = new_order(order_input, datetime.fromtimestamp(order_input.accepted_at, UTC))
        # The order belongs to this run alone (server/orders/projection.py).
        await self._projection.record(
            order,
            ACCEPTED_VERSION,
            order_input.fingerprint,
            run_id=handle.first_execution_run_id,
            # The workflow started here takes the fences of changes.py.
            changes_fenced=True,
        )
        return order

    async def _stored_soon(self, order_id: str) -> StoredOrder:
        """The stored order of a workflow that exists, waiting a little if it is not stored yet.

        A repeat of a request may arrive while the first call, or the workflow,
        is still writing the order: it waits for that write (the projection's
        NOTIFY wakes it) rather than failing.
        """
        with self._events.watch(order_id) as changed:
            existing = await self._orders.get(order_id)
            if existing is not None:
                return existing
            refusal = await self._never_stored(order_id)
            if refusal.reason is not Reason.DEPENDENCY_UNAVAILABLE:
                raise refusal
            try:
                async with asyncio.timeout(self._workflow_wait.total_seconds()):
                    while existing is None:
                        await changed.wait()
                        changed.clear()
                        existing = await self._orders.get(order_id)
            except TimeoutError:
                raise refusal from None
            return existing

    async def _never_stored(self, order_id: str) -> Error:
        """Why an order whose workflow exists is not in the projection."""
        handle = self._temporal.get_workflow_handle(order_id)
        try:
            if (await handle.describe()).status == WorkflowExecutionStatus.FAILED:
                await handle.result()
        except WorkflowFailureError as failed:
            # The workflow refused the order before storing it (see OrderWorkflow._refuse).
            return _from_workflow(failed.cause)
        except RPCError as rpc_error:
            return temporal_unavailable(rpc_error)
        return Error(Reason.DEPENDENCY_UNAVAILABLE, "the order is being stored; retry")

    @contextlib.asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        """Bounds a wait on the order's workflow (which needs a running worker).

        What was sent is durable in Temporal; a caller that retries the same
        request later gets the same order, never a second one.
        """
        try:
            async with asyncio.timeout(self._workflow_wait.total_seconds()):
                yield
        # The SDK reports its cancelled call as its own error, not as a timeout.
        except (TimeoutError, RPCTimeoutOrCancelledError):
            log.warning("order workflow did not answer in time", waited=str(self._workflow_wait))
            raise Error(
                Reason.DEPENDENCY_UNAVAILABLE,
                f"{what}: the order workflow did not answer in time; retry the same request",
            ) from None

    # -------------------------------------------------------------- reads

    async def _stored(self, order_id: str, *, replica_ok: bool = False) -> StoredOrder:
        stored = self._cache.get(order_id)
        if stored is not None:
            return stored
        Violations().require("order_id", order_id).raise_if_any()
        if replica_ok and self._replica is not None:
            # Not cached: a lagging replica could return a version older than
            # the one whose NOTIFY just emptied the cache, and nothing would
            # empty it again. An order the replica lacks may be a new one it
            # has not received yet: the primary answers for it.
            stored = await self._replica.get(order_id)
            if stored is not None:
                return stored
        ticket = self._cache.ticket()
        stored = await self._orders.get(order_id)
        if stored is None:
            raise Error(Reason.ORDER_NOT_FOUND, f"no order {order_id}", {"order_id": order_id})
        self._cache.put(stored, ticket)
        return stored

    async def _visible(self, order_id: str, *, replica_ok: bool = False) -> StoredOrder:
        """The stored order, if the caller may see it: another customer's is NOT_FOUND."""
        stored = await self._stored(order_id, replica_ok=replica_ok)
        scope = customer_scope()
        if scope is not None and stored.order.customer_id != scope:
            raise Error(Reason.ORDER_NOT_FOUND, f"no order {order_id}", {"order_id": order_id})
        return stored

    @_bounded_read
    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetOrderResponse:
        stored = await self._visible(request.order_id, replica_ok=True)
        if request.view != pb.ORDER_VIEW_FULL:
            return disclosed(pb.GetOrderResponse(order=stored.order))
        progress = await self.progress(stored)
        return disclosed(pb.GetOrderResponse(order=stored.order, progress=progress))

    async def progress(self, stored: StoredOrder) -> pb.OrderProgress:
        """What the workflow is doing: its own account, plus the server's retry count.

        GetOrder's full view, and OperatorService.GetOrderDetail's.

        Why the last attempt failed is the failure's own text for an operator,
        its reason's standard message for a customer service (disclosure.py).
        """
        if stored.order.state in TERMINAL_STATES:
            return pb.OrderProgress(workflow_running=False)
        if stored.order.attention_required and customer_scope() is None:
            attention = await self._orders.attention(stored.order.order_id)
            if attention is not None:  # its workflow was ended from outside
                status, holdings = attention
                return pb.OrderProgress(workflow_ended_outside_saga=status, holdings=holdings)
        handle = self._temporal.get_workflow_handle(stored.order.order_id)
        try:
            async with asyncio.timeout(PROGRESS_WAIT.total_seconds()):
                progress = await handle.query(
                    order_workflow.PROGRESS.name, result_type=order_workflow.PROGRESS.result_type
                )
        # The SDK reports its cancelled call as its own error, not as a timeout.
        except (TimeoutError, RPCTimeoutOrCancelledError):
            return self._busy(stored.order)
        except RPCError as rpc_error:
            raise temporal_unavailable(rpc_error) from None
        except WorkflowQueryFailedError:
            return pb.OrderProgress(workflow_running=False)
        try:
            description = await handle.describe()
        except RPCError as rpc_error:
            raise temporal_unavailable(rpc_error) from None
        message = pb.OrderProgress(
            workflow_running=description.status == WorkflowExecutionStatus.RUNNING,
            current_step=progress.current_step,
            pending_compensations=progress.pending_compensations,
            failing_compensations=progress.failing_compensations,
            cancel_requested=progress.cancel_requested,
            # A local step's attempts are counted by the workflow itself.
            current_step_attempt=progress.current_step_attempt,
            last_attempt_failure=progress.last_attempt_failure,
        )
        failure_type = ""  # a local step's is not kept by the workflow
        for pending in description.raw_description.pending_activities:
            if pending.activity_type.name == progress.current_step:
                message.current_step_attempt = pending.attempt
                message.last_attempt_failure = pending.last_failure.message
                failure_type = pending.last_failure.application_failure_info.type
        if progress.current_step and not message.current_step_attempt:
            message.current_step_attempt = 1
        return disclosed_progress(message, failure_type)

    @staticmethod
    def _busy(order: pb.Order) -> pb.OrderProgress:
        """Progress while the workflow runs a step and cannot answer: what the projection says."""
        return pb.OrderProgress(
            workflow_running=True,
            busy=True,
            current_step=_STEP_OF_STATE.get(order.state, ""),
            cancel_requested=order.state == pb.ORDER_STATE_CANCELLING,
        )

    @answers_serialized  # a ListOrdersResponse framed from the stored orders (listing.py)
    @_bounded_read
    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        customer_id = request.customer_id
        scope = customer_scope()
        if scope is not None:
            if customer_id and customer_id != scope:
                # Checked before it is echoed in the refusal.
                Violations().require("customer_id", customer_id).raise_if_any()
                raise Error(
                    Reason.PERMISSION_DENIED,
                    "a customer service lists only the orders of the customer in its token",
                    {"customer_id": customer_id},
                )
            customer_id = scope
        errors = Violations().optional("customer_id", customer_id, max_length=128)
        if request.page_size < 0:
            errors.add("page_size", "must not be negative")
        if not set(request.states) <= _ORDER_STATES:
            errors.add("states", "lists a value that is not an order state")
        states = sorted(pb.OrderState.Name(s) for s in set(request.states) & _ORDER_STATES)
        filter_key = hashlib.sha256(json.dumps([customer_id, states]).encode()).hexdigest()[:16]
        after = None
        if request.page_token:
            try:
                after = decode_cursor(request.page_token, filter_key)
            except ValueError:  # decode_cursor's one error for any token it did not make
                errors.add("page_token", "is not a token from a previous call with these filters")
        errors.raise_if_any()
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        page = await (self._replica or self._orders).page(
            customer_id=customer_id, states=states, limit=size + 1, after=after
        )
        more = len(page) > size
        page = page[:size]
        return list_orders_response(
            (order for order, _ in page),
            encode_cursor(page[-1][1], filter_key) if more else "",
        )

    @_bounded_stream
    async def WatchOrder(
        self, request: pb.WatchOrderRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchOrderResponse]:
        # Subscribe before reading, so no change slips between the two.
        with self._events.watch(request.order_id) as changed:
            stored = await self._visible(request.order_id)
            last_version, last_state = stored.version, stored.order.state
            yield disclosed(pb.WatchOrderResponse(order=stored.order))
            while last_state not in TERMINAL_STATES:
                try:
                    await asyncio.wait_for(changed.wait(), WATCH_RECHECK_SECONDS)
                except TimeoutError:
                    pass
                changed.clear()
                for version, order in await self._orders.versions_after(
                    request.order_id, last_version
                ):
                    last_version = version
                    if order.state != last_state:
                        last_state = order.state
                        yield disclosed(pb.WatchOrderResponse(order=order))
                        if last_state in TERMINAL_STATES:
                            break

    # ------------------------------------------------------------ changes

    async def _update(self, order_id: str, update: Any, *args: Any) -> pb.Order | None:
        """Runs an update on the order's workflow; None if the workflow is gone."""
        handle = self._temporal.get_workflow_handle(order_id)
        try:
            async with self._bounded("the change was sent but not yet confirmed"):
                return await handle.execute_update(
                    update.name, args=args, result_type=update.result_type
                )
        except WorkflowUpdateFailedError as failed:
            raise _from_workflow(failed.cause) from None
        except RPCError as rpc_error:
            if rpc_error.status == RPCStatusCode.NOT_FOUND:
                return None  # never existed, or finished: the projection knows
            raise temporal_unavailable(rpc_error) from None

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelOrderResponse:
        errors = Violations().require("order_id", request.order_id)
        errors.optional("reason", request.reason, max_length=500, multiline=True)
        errors.raise_if_any()
        if customer_scope() is not None:
            await self._visible(request.order_id)
        order = await self.cancel(request.order_id, request.reason)
        log.info("order cancellation requested", order_id=request.order_id)
        return disclosed(pb.CancelOrderResponse(order=order))

    async def cancel(self, order_id: str, reason: str) -> pb.Order:
        """Cancels an order (checked, in the caller's scope); returns it CANCELLING or CANCELLED.

        CancelOrder's way, and OperatorService.CancelAndCompensate's.
        """
        verdict = await self._changes.cancel(order_id, reason)
        if verdict is Verdict.ACCEPTED:
            # Stored: the workflow is told, and a step it runs now cannot
            # outrun it (server/orders/changes.py).
            await self._signal(order_id, order_workflow.CANCEL_ORDER.name, reason)
            return await self._latest(order_id)
        if verdict is Verdict.NOT_FENCED:
            return await self._cancel_through_workflow(order_id, reason)
        stored = await self._stored(order_id)
        # A repeat of a cancellation that went through (its answer lost,
        # say) gets the cancelled order, as repeating it earlier would have.
        if stored.order.state != pb.ORDER_STATE_CANCELLED:
            self._refuse(verdict, stored.order, "the order has shipped")
        return stored.order

    async def _cancel_through_workflow(self, order_id: str, reason: str) -> pb.Order:
        """Cancels an order whose changes are not fenced: its workflow decides."""
        order = await self._update(order_id, order_workflow.CANCEL, reason)
        if order is None:
            stored = await self._stored(order_id)
            if stored.order.state != pb.ORDER_STATE_CANCELLED:
                self._refuse_finished(stored)
            order = stored.order
        return order

    async def _signal(self, order_id: str, signal: Any, arg: Any) -> None:
        """Tells the order's workflow of a change already stored."""
        handle = self._temporal.get_workflow_handle(order_id)
        try:
            await handle.signal(signal, arg, rpc_timeout=self._workflow_wait)
        except RPCError as rpc_error:
            if rpc_error.status == RPCStatusCode.NOT_FOUND:
                # Its workflow was ended from outside while the order was in
                # flight: an operator settles it (server/orders/abandoned.py),
                # and the change stays stored as what the caller asked for.
                raise Error(
                    Reason.ORDER_FINISHED,
                    "the order's workflow has ended; it is left for an operator to settle",
                    {"order_id": order_id},
                ) from None
            # Stored, so a retry of the same request is taken again and told again.
            raise temporal_unavailable(rpc_error) from None

    async def _latest(self, order_id: str) -> pb.Order:
        """The order as stored now, not as cached: with the change just accepted."""
        stored = await self._orders.get(order_id)
        if stored is None:
            raise Error(Reason.ORDER_NOT_FOUND, f"no order {order_id}", {"order_id": order_id})
        return stored.order

    @staticmethod
    def _refuse(verdict: Verdict, order: pb.Order, shipped: str) -> NoReturn:
        """Raises the refusal of a change the fences did not take."""
        details = {"order_id": order.order_id}
        if verdict is Verdict.ALREADY_SHIPPED:
            raise Error(Reason.ALREADY_SHIPPED, shipped, details)
        raise Error(Reason.ORDER_FINISHED, "the order has failed or been cancelled", details)

    async def UpdateShippingAddress(
        self, request: pb.UpdateShippingAddressRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateShippingAddressResponse:
        errors = Violations().require("order_id", request.order_id)
        errors.address(
            "shipping_address", request.shipping_address, request.HasField("shipping_address")
        )
        errors.raise_if_any()
        if customer_scope() is not None:
            await self._visible(request.order_id)
        verdict = await self._changes.change_address(request.order_id, request.shipping_address)
        if verdict is Verdict.ACCEPTED:
            # The booking reads it when it is sent (server/orders/changes.py).
            order = await self._latest(request.order_id)
        elif verdict is Verdict.NOT_FENCED:
            order = await self._change_address_through_workflow(request)
        else:
            stored = await self._stored(request.order_id)
            self._refuse(verdict, stored.order, "the order is already being shipped")
        log.info("shipping address changed", order_id=request.order_id)
        return disclosed(pb.UpdateShippingAddressResponse(order=order))

    async def _change_address_through_workflow(
        self, request: pb.UpdateShippingAddressRequest
    ) -> pb.Order:
        """Changes the address of an order whose changes are not fenced: its workflow decides."""
        order = await self._update(
            request.order_id,
            order_workflow.UPDATE_SHIPPING_ADDRESS,
            Address.from_proto(request.shipping_address),
        )
        if order is None:
            self._refuse_finished(await self._stored(request.order_id))
        return order

    async def ConfirmDelivery(
        self, request: pb.ConfirmDeliveryRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConfirmDeliveryResponse:
        Violations().require("order_id", request.order_id).raise_if_any()
        order = await self._update(request.order_id, order_workflow.CONFIRM_DELIVERY)
        if order is None:
            stored = await self._stored(request.order_id)
            if stored.order.state != pb.ORDER_STATE_DELIVERED:
                self._refuse_finished(stored)
            order = stored.order
        log.info("delivery confirmed", order_id=request.order_id)
        return pb.ConfirmDeliveryResponse(order=order)

    @staticmethod
    def _refuse_finished(stored: StoredOrder) -> NoReturn:
        """Raises the error for a change asked of an order whose workflow has ended."""
        if stored.order.state in SHIPPED_STATES:
            raise Error(
                Reason.ALREADY_SHIPPED, "the order has shipped", {"order_id": stored.order.order_id}
            )
        raise Error(
            Reason.ORDER_FINISHED,
            "the order has failed or been cancelled",
            {"order_id": stored.order.order_id},
        )
