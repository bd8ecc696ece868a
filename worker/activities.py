"""The order workflow's activities: one call to a downstream service each.

A failed call becomes an `ApplicationError` whose `type` is the downstream
`ErrorInfo.reason`, so the workflow branches on the same vocabulary as every
caller. Business failures are non-retryable; anything else (a service down,
the gateway's hiccup) is retried by the activity's retry policy, or after
the time its circuit breaker says when the breaker refused the call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta

import grpc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from clients.errors import Error, Reason, decode
from clients.proto.common.v1 import money_pb2
from clients.proto.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from clients.proto.orders.v1 import orders_pb2
from clients.proto.payments.v1 import payments_pb2, payments_pb2_grpc
from clients.proto.shipping.v1 import shipping_pb2, shipping_pb2_grpc
from server.core.breaker_interceptor import refused_by_breaker
from server.orders.changes import OrderChanges
from server.orders.projection import ForeignRun, OrderProjection, UnstorableOrder
from worker.metrics import SHIPMENTS_REBOOKED
from worker.model import (
    CANCELLED_FIRST,
    NOT_STORED,
    REFUSED,
    UNWRITTEN,
    WRITTEN,
    Address,
    Charged,
    ChargeInput,
    ReserveInput,
    Shipped,
    ShippingInput,
    ShippingProgress,
    idempotency_key,
)

# Every downstream call gets a deadline well inside the activity's timeout.
CALL_TIMEOUT = 10.0
# A booking that is due but not yet confirmed is asked about again this soon.
MIN_POLL_SECONDS = 0.02


def _shipped(shipment: shipping_pb2.Shipment) -> Shipped:
    """The booking, once the carrier has confirmed it; a cancelled one fails the step for good."""
    if shipment.state != shipping_pb2.SHIPMENT_STATE_BOOKED:
        raise ApplicationError(
            "the shipment was cancelled while being booked",
            type=Reason.SHIPMENT_CANCELLED.value,
            non_retryable=True,
        )
    return Shipped(shipment_id=shipment.shipment_id, tracking_number=shipment.tracking_number)


def _cancelled_first(reason: str) -> ApplicationError:
    return ApplicationError(
        "the order was cancelled before this step",
        reason,
        type=CANCELLED_FIRST,
        non_retryable=True,
    )


def _not_stored(message: str, refused: Reason | None = None) -> ApplicationError:
    """The first write of an order not made; `refused`: why it never can be."""
    return ApplicationError(
        message, refused.value if refused else "", type=NOT_STORED, non_retryable=True
    )


def _application_error(error: Error) -> ApplicationError:
    # Refused by the service's open circuit breaker: the next attempt waits
    # out the cool-down on a timer (the workflow's, for a local step) instead
    # of spending attempts on a service that is left alone meanwhile.
    wait = error.retry_delay if refused_by_breaker(error) else None
    return ApplicationError(
        error.message,
        dict(error.metadata),
        type=error.reason.value,
        non_retryable=error.reason.final,
        next_retry_delay=timedelta(seconds=wait) if wait is not None else None,
    )


async def _call(method, request):  # type: ignore[no-untyped-def]
    """Calls a downstream RPC, turning its failure into an ApplicationError."""
    try:
        return await method(request, timeout=CALL_TIMEOUT)
    except grpc.aio.AioRpcError as rpc_error:
        raise _application_error(decode(rpc_error)) from None


class OrderActivities:
    """Activities with their clients injected, so tests can pass their own."""

    def __init__(
        self,
        *,
        payments: payments_pb2_grpc.PaymentServiceStub,
        inventory: inventory_pb2_grpc.InventoryServiceStub,
        shipping: shipping_pb2_grpc.ShippingServiceStub,
        orders: OrderProjection,
        changes: OrderChanges | None = None,
        shipping_poll_seconds: float = 0.5,
    ) -> None:
        self._payments = payments
        self._inventory = inventory
        self._shipping = shipping
        self._orders = orders
        self._changes = changes
        self._poll_seconds = shipping_poll_seconds

    @activity.defn
    async def record_order(self, order: orders_pb2.Order, version: int, fingerprint: str) -> None:
        """Writes a version of the order to the read-side projection.

        Content that Postgres refuses fails for good: retrying the same write
        could never succeed, and the workflow decides what becomes of the order.
        So does a write by a run that the order does not belong to: a run
        started under the id of an order that already has its own.
        """
        try:
            await self._orders.record(
                order, version, fingerprint, run_id=activity.info().workflow_run_id
            )
        except UnstorableOrder as error:
            raise ApplicationError(
                f"the order cannot be stored: {error}",
                type=Reason.INVALID_ARGUMENT.value,
                non_retryable=True,
            ) from None
        except ForeignRun as error:
            raise ApplicationError(
                str(error), type=Reason.UNAUTHENTICATED.value, non_retryable=True
            ) from None

    async def _record_step(self, order: orders_pb2.Order, version: int, fingerprint: str) -> str:
        """Writes the order as its step, just done, left it; what became of the write.

        The step has taken effect, so the write must not fail it: content
        Postgres refuses is REFUSED and a database out of reach UNWRITTEN
        (worker/model.py says what the workflow does with each). A run the
        order does not belong to fails, as in record_order.
        """
        order.update_time.GetCurrentTime()
        try:
            await self._orders.record(
                order, version, fingerprint, run_id=activity.info().workflow_run_id
            )
        except UnstorableOrder:
            return REFUSED
        except ForeignRun as error:
            raise ApplicationError(
                str(error), type=Reason.UNAUTHENTICATED.value, non_retryable=True
            ) from None
        except Exception as error:  # the workflow's own write retries whatever it was
            activity.logger.warning(
                "the order's write after its step is left to the workflow", exc_info=error
            )
            return UNWRITTEN
        return WRITTEN

    @activity.defn
    async def store_reserve_and_record(
        self, request: ReserveInput, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> str:
        """The order's first write, then reserve_stock, then the order written as reserved.

        The first-write-in-reserve patch: the write that stores a new order
        and finds out whether it belongs to this run (`store_first`: nothing
        to write when the front door stored it for this run) and the first
        step in one local activity. The write comes first, so that stock is
        never reserved for an order this run may not store: if it fails,
        nothing is reserved and the step fails with NOT_STORED, whose detail
        is the reason the order is refused for good (content Postgres
        refuses, a run the order does not belong to), or empty when the
        database was out of reach: the workflow then stores the order with its
        own write, which retries. The reserved order is written under
        `version + 1`.
        """
        try:
            await self._orders.store_first(
                order, version, fingerprint, run_id=activity.info().workflow_run_id
            )
        except UnstorableOrder as error:
            raise _not_stored(
                f"the order cannot be stored: {error}", Reason.INVALID_ARGUMENT
            ) from None
        except ForeignRun as error:
            raise _not_stored(str(error), Reason.UNAUTHENTICATED) from None
        except Exception as error:
            raise _not_stored(
                f"the order was not stored: {type(error).__name__}: {error}"
            ) from None
        await self.reserve_stock(request)
        order.state = orders_pb2.ORDER_STATE_RESERVED
        return await self._record_step(order, version + 1, fingerprint)

    @activity.defn
    async def reserve_stock_and_record(
        self, request: ReserveInput, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> str:
        """reserve_stock, then the order written as reserved (the step-records patch)."""
        await self.reserve_stock(request)
        return await self._record_step(order, version, fingerprint)

    @activity.defn
    async def charge_payment_and_record(
        self, request: ChargeInput, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> Charged:
        """charge_payment, then the order written as paid, with its payment id."""
        charged = await self.charge_payment(request)
        order.payment_id = charged.payment_id
        charged.written = await self._record_step(order, version, fingerprint)
        return charged

    @activity.defn
    async def commit_stock_and_record(
        self, order_id: str, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> str:
        """commit_stock, then the order written as shipping."""
        await self.commit_stock(order_id)
        return await self._record_step(order, version, fingerprint)

    @activity.defn
    async def book_shipment_and_record(
        self, request: ShippingInput, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> Shipped | None:
        """book_shipment, then, once the carrier confirmed, the order written as shipped.

        The shipped-record patch. The order is written with what only the
        booking knows: its tracking number and, for a fenced booking, the
        address it goes to. A booking still in progress writes nothing: the
        workflow waits for it with arrange_shipping and writes the order then.
        """
        shipped = await self.book_shipment(request)
        if shipped is None:
            return None
        order.tracking_number = shipped.tracking_number
        if shipped.address is not None:
            order.shipping_address.CopyFrom(shipped.address.to_proto())
        shipped.written = await self._record_step(order, version, fingerprint)
        return shipped

    @activity.defn
    async def reserve_stock(self, request: ReserveInput) -> None:
        await _call(
            self._inventory.ReserveStock,
            inventory_pb2.ReserveStockRequest(
                order_id=request.order_id,
                lines=[
                    inventory_pb2.ReservationLine(sku=line.sku, quantity=line.quantity)
                    for line in request.lines
                ],
            ),
        )

    @activity.defn
    async def release_stock(self, order_id: str) -> None:
        """Compensation of reserve_stock (and of commit_stock: goods come back)."""
        await _call(
            self._inventory.ReleaseReservation,
            inventory_pb2.ReleaseReservationRequest(order_id=order_id),
        )

    @activity.defn
    async def commit_stock(self, order_id: str) -> None:
        await _call(
            self._inventory.CommitReservation,
            inventory_pb2.CommitReservationRequest(order_id=order_id),
        )

    @activity.defn
    async def charge_payment(self, request: ChargeInput) -> Charged:
        response = await _call(
            self._payments.Charge,
            payments_pb2.ChargeRequest(
                idempotency_key=idempotency_key(request.order_id),
                order_id=request.order_id,
                amount=money_pb2.Money(
                    currency_code=request.currency_code, amount_minor=request.amount_minor
                ),
                # Orders accepted before payment methods carry the token.
                payment_method_id=request.payment_method_id,
                payment_token="" if request.payment_method_id else request.payment_token,
            ),
        )
        return Charged(payment_id=response.payment.payment_id)

    @activity.defn
    async def refund_payment(self, order_id: str) -> None:
        """Compensation of charge_payment; voids the key when nothing was charged."""
        await _call(
            self._payments.Refund,
            payments_pb2.RefundRequest(idempotency_key=idempotency_key(order_id)),
        )

    @activity.defn
    async def book_shipment(self, request: ShippingInput) -> Shipped | None:
        """Asks the carrier to book the shipment; the booking if it confirmed at once.

        None when the carrier is still booking: the workflow then waits for
        the confirmation with arrange_shipping, which heartbeats while it
        waits. A quick call, run as a local activity.

        A fenced booking (server/orders/changes.py) first raises the booking
        fence, and goes to the address last accepted before it, or not at all
        if a cancellation was accepted first; once the carrier confirmed, it
        raises the shipped fence, unless a cancellation came in between.
        """
        if request.fenced:
            fence = await self._fences().fence_booking(request.order_id)
            if fence.cancel_reason is not None:
                raise _cancelled_first(fence.cancel_reason)
            if fence.address is not None:
                request = dataclasses.replace(request, address=Address.from_proto(fence.address))
        shipment = await self._create_shipment(request)
        if shipment.state == shipping_pb2.SHIPMENT_STATE_BOOKING:
            return None
        return await self._confirmed(request, shipment)

    async def _confirmed(self, request: ShippingInput, shipment: shipping_pb2.Shipment) -> Shipped:
        """The confirmed booking; for a fenced one, behind the shipped fence."""
        shipped = _shipped(shipment)
        if request.fenced:
            cancelled = await self._fences().fence_shipped(request.order_id)
            if cancelled is not None:
                raise _cancelled_first(cancelled)
            shipped.address = Address.from_proto(shipment.address)
        return shipped

    def _fences(self) -> OrderChanges:
        if self._changes is None:
            raise RuntimeError("a fenced step needs the order changes (OrderActivities.changes)")
        return self._changes

    @activity.defn
    async def arrange_shipping(self, request: ShippingInput) -> Shipped:
        """Books the shipment and waits until the carrier confirms it.

        Heartbeats while it waits. Booking is idempotent per order, so a retry
        (after this worker died, say) finds the booking already made and only
        resumes waiting; the heartbeat details say how far it got.
        """
        progress = ShippingProgress()
        details = activity.info().heartbeat_details
        if details:
            # Heartbeat details come back decoded without a type: a plain dict.
            progress = ShippingProgress(**details[0])
        if progress.shipment_id:
            # An earlier attempt booked it (its worker died, say): only wait.
            activity.logger.info(
                "resuming shipment booking from heartbeat",
                extra={"shipment_id": progress.shipment_id, "polls": progress.polls},
            )
            shipment = await self._get_shipment(request.order_id)
        elif request.requested:
            shipment = await self._get_shipment(request.order_id)
            progress.shipment_id = shipment.shipment_id
        else:
            shipment = await self._create_shipment(request)
            progress.shipment_id = shipment.shipment_id
        while shipment.state == shipping_pb2.SHIPMENT_STATE_BOOKING:
            activity.heartbeat(progress)
            await asyncio.sleep(self._until_next_poll(shipment))
            progress.polls += 1
            shipment = await self._get_shipment(request.order_id)
        return await self._confirmed(request, shipment)

    async def _create_shipment(self, request: ShippingInput) -> shipping_pb2.Shipment:
        """Books the shipment, or finds the one booked before: booking is idempotent per order.

        A booking made before to another address (the order's changed since)
        is moved to the one asked for now: the parcel goes where the order says.
        """
        try:
            response = await _call(
                self._shipping.CreateShipment,
                shipping_pb2.CreateShipmentRequest(
                    order_id=request.order_id,
                    address=request.address.to_proto(),
                    item_count=request.item_count,
                ),
            )
        except ApplicationError as error:
            if error.type != Reason.SHIPMENT_DIFFERS.value:
                raise
            return await self._rebook_shipment(request, error)
        return response.shipment

    async def _rebook_shipment(
        self, request: ShippingInput, differs: ApplicationError
    ) -> shipping_pb2.Shipment:
        response = await _call(
            self._shipping.RebookShipment,
            shipping_pb2.RebookShipmentRequest(
                order_id=request.order_id,
                address=request.address.to_proto(),
                item_count=request.item_count,
            ),
        )
        metadata = differs.details[0] if differs.details else {}
        activity.logger.warning(
            "shipment rebooked: the order's address changed after it was booked",
            extra={
                "order_id": request.order_id,
                "shipment_id": response.shipment.shipment_id,
                "mismatched_fields": metadata.get("mismatched_fields", ""),
            },
        )
        SHIPMENTS_REBOOKED.inc()
        return response.shipment

    def _until_next_poll(self, shipment: shipping_pb2.Shipment) -> float:
        """Asks again when the carrier expects to be done, and at least every poll interval."""
        if not shipment.HasField("expected_booked_time"):
            return self._poll_seconds
        due_in = shipment.expected_booked_time.ToNanoseconds() / 1e9 - time.time()
        return min(self._poll_seconds, max(due_in, MIN_POLL_SECONDS))

    async def _get_shipment(self, order_id: str) -> shipping_pb2.Shipment:
        response = await _call(
            self._shipping.GetShipment, shipping_pb2.GetShipmentRequest(order_id=order_id)
        )
        return response.shipment

    @activity.defn
    async def cancel_shipment(self, order_id: str) -> None:
        """Compensation of arrange_shipping."""
        await _call(
            self._shipping.CancelShipment,
            shipping_pb2.CancelShipmentRequest(order_id=order_id),
        )

    def all(self) -> list:  # type: ignore[type-arg]
        return [
            self.record_order,
            self.reserve_stock,
            self.release_stock,
            self.commit_stock,
            self.charge_payment,
            self.refund_payment,
            self.book_shipment,
            self.arrange_shipping,
            self.cancel_shipment,
            self.store_reserve_and_record,
            self.reserve_stock_and_record,
            self.charge_payment_and_record,
            self.commit_stock_and_record,
            self.book_shipment_and_record,
        ]
