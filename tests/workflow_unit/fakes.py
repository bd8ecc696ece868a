"""Stand-ins for OrderActivities, registered under the real activity names.

Every call is recorded as `(name, argument)` so a test can assert the exact
sequence the saga ran. By default each activity succeeds at once; a test
changes one activity's behaviour with `fail`, `fail_times` or `block`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from clients.errors import Reason
from clients.proto.orders.v1 import orders_pb2
from worker.model import (
    NOT_STORED,
    REFUSED,
    UNWRITTEN,
    WRITTEN,
    Charged,
    ChargeInput,
    ReserveInput,
    Shipped,
    ShippingInput,
)

Behaviour = Callable[[Any], Awaitable[Any]]

PAYMENT_ID = "pay-1"
SHIPMENT_ID = "shp-1"
TRACKING_NUMBER = "TRK-1"


class Gate:
    """Holds an activity until the test opens it; `started` tells the test it is running."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.opened = asyncio.Event()
        # For a step that honours cancellation: the calls made before it stopped.
        self.steps_when_stopped: list[str] | None = None

    def open(self) -> None:
        self.opened.set()


class FakeActivities:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._behaviours: dict[str, Behaviour] = {}
        self._called = asyncio.Condition()

    # ------------------------------------------------------------- set-up

    def fail(self, name: str, reason: str) -> None:
        """Makes `name` fail for good with a business error, as the real ones do."""

        async def behaviour(_: Any) -> Any:
            raise ApplicationError(f"{name} failed", type=reason, non_retryable=True)

        self._behaviours[name] = behaviour

    def fail_times(
        self,
        name: str,
        times: int,
        reason: str = "GATEWAY_UNAVAILABLE",
        next_retry_delay: timedelta | None = None,
    ) -> None:
        """Makes `name` fail with a retryable error for its first `times` calls.

        With `next_retry_delay`, each failure asks for that wait before the
        next attempt, as a call refused by an open circuit breaker does.
        """
        failures = iter(range(times))

        async def behaviour(_: Any) -> Any:
            if next(failures, None) is not None:
                raise ApplicationError(
                    f"{name} unavailable", type=reason, next_retry_delay=next_retry_delay
                )
            return _DEFAULTS.get(name)

        self._behaviours[name] = behaviour

    def behave(self, name: str, behaviour: Behaviour) -> None:
        """Makes `name` run `behaviour(argument)` instead of succeeding at once."""
        self._behaviours[name] = behaviour

    def carrier_books_later(self) -> None:
        """Makes the booking request answer "still booking", so arrange_shipping waits for it."""

        async def behaviour(_: Any) -> Any:
            return None

        self._behaviours["book_shipment"] = behaviour

    def block(self, name: str, then: Behaviour | None = None) -> Gate:
        """Holds `name` until the returned gate is opened, then behaves as `then` or as usual."""
        gate = Gate()

        async def behaviour(arg: Any) -> Any:
            gate.started.set()
            await gate.opened.wait()
            return await then(arg) if then else _DEFAULTS.get(name)

        self._behaviours[name] = behaviour
        return gate

    def heartbeat_until_cancelled(self, name: str, cleanup_seconds: float = 0.2) -> Gate:
        """Makes `name` heartbeat until cancelled, then take a while to stop, as a real step may.

        The gate notes which calls had been made when the step stopped, so a test
        can tell whether a compensation raced the step it undoes.
        """
        gate = Gate()

        async def behaviour(_: Any) -> Any:
            gate.started.set()
            try:
                while True:
                    activity.heartbeat()
                    await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                await asyncio.sleep(cleanup_seconds)
                gate.steps_when_stopped = self.step_names
                raise

        self._behaviours[name] = behaviour
        return gate

    def block_record(self, state: int) -> Gate:
        """Holds the projection write of `state` until the gate is opened."""
        gate = Gate()

        async def behaviour(arg: Any) -> Any:
            order, _, _ = arg
            if order.state == state and not gate.started.is_set():
                gate.started.set()
                await gate.opened.wait()

        self._behaviours["record_order"] = behaviour
        return gate

    def lose_record_once(self, state: int) -> None:
        """The first write of `state` fails as a lost database does; the next ones pass."""
        lost: list[int] = []

        async def behaviour(arg: Any) -> Any:
            order, _, _ = arg
            if order.state == state and not lost:
                lost.append(state)
                raise ApplicationError("connection lost", type="DEPENDENCY_UNAVAILABLE")

        self._behaviours["record_order"] = behaviour

    def refuse_record(self, state: int) -> None:
        """Makes the projection refuse every write of `state`, as Postgres does bad text."""

        async def behaviour(arg: Any) -> Any:
            order, _, _ = arg
            if order.state == state:
                raise ApplicationError(
                    "the order cannot be stored", type="INVALID_ARGUMENT", non_retryable=True
                )

        self._behaviours["record_order"] = behaviour

    # ------------------------------------------------------------ queries

    @property
    def steps(self) -> list[tuple[str, Any]]:
        """Every call except the projection writes, in order."""
        return [(name, arg) for name, arg in self.calls if name != "record_order"]

    @property
    def step_names(self) -> list[str]:
        return [name for name, _ in self.steps]

    @property
    def records(self) -> list[tuple[orders_pb2.Order, int, str]]:
        """The projection writes: (order, version, fingerprint), in order."""
        return [arg for name, arg in self.calls if name == "record_order"]

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Until a call makes `predicate` true (10 s at most)."""
        async with asyncio.timeout(10), self._called:
            await self._called.wait_for(predicate)

    # --------------------------------------------------------- activities

    async def _call(self, name: str, arg: Any) -> Any:
        async with self._called:
            self.calls.append((name, arg))
            self._called.notify_all()
        behaviour = self._behaviours.get(name)
        if behaviour is not None:
            return await behaviour(arg)
        return _DEFAULTS.get(name)

    @activity.defn(name="record_order")
    async def record_order(self, order: orders_pb2.Order, version: int, fingerprint: str) -> None:
        await self._call("record_order", (order, version, fingerprint))

    @activity.defn(name="reserve_stock")
    async def reserve_stock(self, request: ReserveInput) -> None:
        await self._call("reserve_stock", request)

    @activity.defn(name="release_stock")
    async def release_stock(self, order_id: str) -> None:
        await self._call("release_stock", order_id)

    @activity.defn(name="commit_stock")
    async def commit_stock(self, order_id: str) -> None:
        await self._call("commit_stock", order_id)

    @activity.defn(name="charge_payment")
    async def charge_payment(self, request: ChargeInput) -> Charged:
        return await self._call("charge_payment", request)

    @activity.defn(name="refund_payment")
    async def refund_payment(self, order_id: str) -> None:
        await self._call("refund_payment", order_id)

    @activity.defn(name="book_shipment")
    async def book_shipment(self, request: ShippingInput) -> Shipped | None:
        return await self._call("book_shipment", request)

    @activity.defn(name="arrange_shipping")
    async def arrange_shipping(self, request: ShippingInput) -> Shipped:
        return await self._call("arrange_shipping", request)

    @activity.defn(name="cancel_shipment")
    async def cancel_shipment(self, order_id: str) -> None:
        await self._call("cancel_shipment", order_id)

    # The steps that also write the order (the step-records patch) are
    # recorded as the step, then its write, so that tests see the calls they
    # always saw; each part keeps its own behaviour.

    async def _record_step(self, order: orders_pb2.Order, version: int, fingerprint: str) -> str:
        try:
            await self._call("record_order", (order, version, fingerprint))
        except ApplicationError as error:
            if error.type == Reason.UNAUTHENTICATED.value:
                raise
            # A refusal for content is non-retryable, as the real write's is.
            return REFUSED if error.non_retryable else UNWRITTEN
        return WRITTEN

    @activity.defn(name="store_reserve_and_record")
    async def store_reserve_and_record(
        self, request: ReserveInput, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> str:
        try:
            await self._call("record_order", (order, version, fingerprint))
        except ApplicationError as error:
            # As the real one: refused for good, or (retryable) not known.
            refused = error.type if error.non_retryable else ""
            raise ApplicationError(
                error.message, refused, type=NOT_STORED, non_retryable=True
            ) from None
        await self._call("reserve_stock", request)
        reserved = orders_pb2.Order()
        reserved.CopyFrom(order)
        reserved.state = orders_pb2.ORDER_STATE_RESERVED
        return await self._record_step(reserved, version + 1, fingerprint)

    @activity.defn(name="reserve_stock_and_record")
    async def reserve_stock_and_record(
        self, request: ReserveInput, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> str:
        await self._call("reserve_stock", request)
        return await self._record_step(order, version, fingerprint)

    @activity.defn(name="charge_payment_and_record")
    async def charge_payment_and_record(
        self, request: ChargeInput, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> Charged:
        charged = await self._call("charge_payment", request)
        order.payment_id = charged.payment_id
        written = await self._record_step(order, version, fingerprint)
        return dataclasses.replace(charged, written=written)

    @activity.defn(name="commit_stock_and_record")
    async def commit_stock_and_record(
        self, order_id: str, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> str:
        await self._call("commit_stock", order_id)
        return await self._record_step(order, version, fingerprint)

    @activity.defn(name="book_shipment_and_record")
    async def book_shipment_and_record(
        self, request: ShippingInput, order: orders_pb2.Order, version: int, fingerprint: str
    ) -> Shipped | None:
        shipped = await self._call("book_shipment", request)
        if shipped is None:
            return None
        order.tracking_number = shipped.tracking_number
        if shipped.address is not None:
            order.shipping_address.CopyFrom(shipped.address.to_proto())
        written = await self._record_step(order, version, fingerprint)
        return dataclasses.replace(shipped, written=written)

    def all(self) -> list[Callable[..., Any]]:
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


_DEFAULTS: dict[str, Any] = {
    "charge_payment": Charged(payment_id=PAYMENT_ID),
    "book_shipment": Shipped(shipment_id=SHIPMENT_ID, tracking_number=TRACKING_NUMBER),
    "arrange_shipping": Shipped(shipment_id=SHIPMENT_ID, tracking_number=TRACKING_NUMBER),
}
