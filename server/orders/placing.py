"""Placing an order: CreateOrder's work.

The request is checked synchronously; its lines are priced from the catalog
and its card handed to the payment service (by reference: the token never
enters the workflow's history). Then the order's workflow is started through
the gateway (gateway.py) and the order stored as accepted, so the answer
needs no worker.

A customer service places orders only for the customer its token names
(PERMISSION_DENIED otherwise). request_ids are each customer's own
(`order_id_for`), so one customer can neither reveal nor take another's
order by its request_id; a repeat of a request is answered from the
projection, and a request_id reused with other content is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import grpc
import structlog
from google.protobuf import json_format

from clients.errors import Error, Reason, decode
from clients.proto.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.payments.v1 import payments_pb2, payments_pb2_grpc
from server.core.auth import customer_scope
from server.core.validation import SKU, Violations
from server.orders.admission import Admission, AdmissionLimits
from server.orders.disclosure import disclosed
from server.orders.events import OrderEvents
from server.orders.gateway import WorkflowGateway
from server.orders.projection import OrderProjection
from server.orders.repository import OrderRepository, StoredOrder
from worker.model import Address, Line, OrderInput, new_order

log = structlog.get_logger(__name__)

MAX_LINES = 100
MAX_QUANTITY = 1_000_000
# Amounts are int64 on the wire.
MAX_AMOUNT_MINOR = 2**63 - 1
# The projection version of an order as the front door accepted it; the
# workflow's own writes start at 1.
ACCEPTED_VERSION = 0
# Less time than this before the caller's deadline, and no order is placed.
MIN_TIME_TO_PLACE_SECONDS = 0.25


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


def _same_request(existing: StoredOrder, content_hash: str) -> pb.Order:
    if existing.fingerprint != content_hash:
        raise Error(
            Reason.REQUEST_ID_REUSED,
            "this request_id was already used for a different request",
            {"order_id": existing.order.order_id},
        )
    return existing.order


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


class OrderPlacing:
    def __init__(
        self,
        *,
        workflows: WorkflowGateway,
        inventory: inventory_pb2_grpc.InventoryServiceStub,
        payments: payments_pb2_grpc.PaymentServiceStub,
        orders: OrderRepository,
        projection: OrderProjection,
        events: OrderEvents,
        tracking_period: timedelta,
        escalate_after: timedelta,
        admission: Admission | None = None,
    ) -> None:
        self._workflows = workflows
        self._inventory = inventory
        self._payments = payments
        self._orders = orders
        self._projection = projection
        self._events = events
        self._tracking_period = tracking_period
        self._escalate_after = escalate_after
        # Without one (tests, tools), everything is admitted.
        self._admission = admission or Admission(AdmissionLimits(enabled=False))

    async def create_order(
        self, request: pb.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateOrderResponse:
        """Places the order a CreateOrder request asks for, or finds the one it placed before."""
        scope = customer_scope()
        if scope is not None and request.customer_id and request.customer_id != scope:
            # Checked before it is echoed in the refusal.
            Violations().require("customer_id", request.customer_id).raise_if_any()
            raise Error(
                Reason.PERMISSION_DENIED,
                "a customer service places orders only for the customer in its token",
                {"customer_id": request.customer_id},
            )
        errors = _check_shape(request)
        content_hash = fingerprint(request)
        if errors:
            return await self._place(request, content_hash, errors, context)
        # Before anything is read, stored or asked of another service: the
        # platform, or this customer's share of it, may be full. A refusal
        # then costs no database connection, which a flood would queue for.
        # (A repeat of an accepted request is refused too, and answered when
        # it comes back.)
        order_id = order_id_for(request.customer_id, request.request_id)
        with self._admission.order(scope or request.customer_id, order_id) as placing:
            # A repeat of an accepted request is answered from the projection.
            existing = await self._orders.get_by_request_id(request.customer_id, request.request_id)
            if existing is not None:
                self._admission.placed_before(placing)
                order = _same_request(existing, content_hash)
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
        _check_time_left(context)
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

    async def _start(self, order_input: OrderInput) -> pb.Order:
        """Starts the order's workflow and stores the order as accepted.

        The answer needs no worker: once Temporal has the workflow, the order
        is durable, and the PENDING row written here makes it readable at
        once (the workflow writes every later version, under versions 1 and
        up). A repeat finds the workflow there and answers from the
        projection; a workflow started but not yet stored (a crash between
        the two writes) is stored by the workflow itself a moment later.
        """
        started = await self._workflows.start(order_input)
        if started is None:
            existing = await self._stored_soon(order_input.order_id)
            return _same_request(existing, order_input.fingerprint)
        order = new_order(order_input, datetime.fromtimestamp(order_input.accepted_at, UTC))
        # The order belongs to this run alone (server/orders/projection.py).
        await self._projection.record(
            order,
            ACCEPTED_VERSION,
            order_input.fingerprint,
            run_id=started.run_id,
            # The workflow started here takes the fences of changes.py.
            changes_fenced=True,
        )
        # The caller's next ListOrders shows it, whatever its NOTIFY's pace.
        self._events.written_here(order.order_id, order.customer_id)
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
            refusal = await self._workflows.why_not_stored(order_id)
            if refusal.reason is not Reason.DEPENDENCY_UNAVAILABLE:
                raise refusal
            try:
                async with asyncio.timeout(self._workflows.wait.total_seconds()):
                    while existing is None:
                        await changed.wait()
                        changed.clear()
                        existing = await self._orders.get(order_id)
            except TimeoutError:
                raise refusal from None
            return existing
