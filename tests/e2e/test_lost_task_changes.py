"""A workflow task lost around the booking: the fences still decide, with the real steps.

Local activities leave no trace in the history until their workflow task
completes. Here the stack's own worker is stopped and the test runs the real
worker in its place (real activities, real services, the orders database),
with one interceptor more: while its switch is on, it fails every workflow
task that reaches a given point, as a worker dying just before completing its
task would. The task is retried, and every attempt reserves, charges, commits
(and, for the first test, books) again, under the same keys.

Meanwhile a change is sent through the front door, which answers from the
fences in the order's row and needs no worker:

* lost after the booking (which wrote the order as shipped in the same
  step): the booking fence is up, so an address change is refused
  ALREADY_SHIPPED, and the order ships to the address it was placed with,
  charged once, its stock committed once;
* lost before the booking: an address change is accepted, and the retried
  task books to the new address;
* lost before the booking, and a cancellation arrives: it is accepted, and the
  order is cancelled with everything the lost task did undone (the charge
  refunded, the stock back, no live shipment).

Each test checks that its history really holds a failed workflow task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Interceptor,
    StartLocalActivityInput,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from clients.errors import Reason
from clients.proto.common.v1 import address_pb2
from clients.proto.inventory.v1 import inventory_pb2_grpc
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.payments.v1 import payments_pb2, payments_pb2_grpc
from clients.proto.shipping.v1 import shipping_pb2, shipping_pb2_grpc
from server.core.breaker_interceptor import guarded_channels
from server.core.credentials import caller_credentials
from server.core.database import create_pool
from server.core.services import WORKER
from server.core.settings import Settings
from server.core.temporal import connect_temporal
from server.orders.changes import OrderChanges
from server.orders.projection import OrderProjection
from tests.support.database import scratch_database
from tests.support.orders import (
    address,
    order_request,
    payments_of,
    place,
    rpc_error,
    stock_of,
    stock_sku,
    wait_for,
)
from tests.support.polling import eventually
from tests.support.stack import Stack, running_stack
from worker.activities import OrderActivities
from worker.main import build_worker

pytestmark = pytest.mark.e2e

SHIPPED = pb.ORDER_STATE_SHIPPED
# What the steps write on their way to SHIPPED.
SAGA_STATES = (
    pb.ORDER_STATE_PENDING,
    pb.ORDER_STATE_RESERVED,
    pb.ORDER_STATE_PAID,
    pb.ORDER_STATE_SHIPPING,
    SHIPPED,
)
# Room for a few retries of the lost task, each running every step again.
WITHIN = 60.0


@pytest_asyncio.fixture(scope="module")
async def stack(
    temporal: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """A stack of its own whose worker the tests replace with their own."""
    async with scratch_database(tmp_path_factory.mktemp("lost-task-db")) as url:
        async with running_stack(
            tmp_path_factory.mktemp("lost-task"),
            url,
            temporal.client.service_client.config.target_host,
            # The carrier confirms at once: the booking and SHIPPED are in one task.
            SHIPPING_BOOKING_SECONDS="0",
        ) as stack:
            stack.process("worker").stop()
            yield stack


# ------------------------------------------------------------- the dying worker


class Death:
    """Fails every workflow task that asks for a local activity `when` picks, while on.

    A failed workflow task is retried, and the commands of the failed one (the
    markers of the local activities it ran) are dropped: the same as a worker
    dying just before it completes the task. The task dies as it asks for the
    local activity, or, `after` it, once the local activity has run.
    """

    def __init__(
        self, when: Callable[[StartLocalActivityInput], bool], *, after: bool = False
    ) -> None:
        self.when = when
        self.after = after
        self.on = True
        self.deaths = 0

    def check(self, input: StartLocalActivityInput) -> None:
        if not self.after and self.on and self.when(input):
            self._die()

    def follows(self, input: StartLocalActivityInput) -> bool:
        """Whether the task is to die once this local activity has run."""
        return self.after and self.on and self.when(input)

    async def once_run(self, handle: Any) -> Any:
        result = await handle
        if self.on:
            self._die()
        return result

    def _die(self) -> None:
        self.deaths += 1
        raise RuntimeError("the worker died before completing its workflow task")

    async def again(self) -> None:
        """Waits until one more task has died: the task is still being retried, and lost."""
        seen = self.deaths
        await eventually(self._deaths, lambda now: now > seen, within=WITHIN)

    async def _deaths(self) -> int:
        return self.deaths


class _Dying(Interceptor):
    def __init__(self, death: Death) -> None:
        self._death = death

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        death = self._death

        class _Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(_DyingOutbound(outbound, death))

        return _Inbound


class _DyingOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, death: Death) -> None:
        super().__init__(next)
        self._death = death

    def start_local_activity(self, input: StartLocalActivityInput) -> Any:
        self._death.check(input)
        handle = super().start_local_activity(input)
        if self._death.follows(input):
            return asyncio.ensure_future(self._death.once_run(handle))
        return handle


def books(input: StartLocalActivityInput) -> bool:
    """The booking request's local activity (which writes SHIPPED once the carrier confirmed)."""
    return input.activity == "book_shipment_and_record"


@contextlib.asynccontextmanager
async def real_worker(stack: Stack, death: Death) -> AsyncIterator[Worker]:
    """The worker of worker/main.py on the stack's task queue, as its process, plus `death`."""
    settings = Settings(**stack.process("worker").env)  # type: ignore[arg-type]  # by alias
    credentials = caller_credentials(settings, "worker")
    pool = await create_pool(
        settings.database_url_of("orders"), max_size=settings.database_pool_max
    )
    channels = guarded_channels(WORKER, settings, credentials)
    try:
        activities = OrderActivities(
            payments=payments_pb2_grpc.PaymentServiceStub(channels["payments"]),
            inventory=inventory_pb2_grpc.InventoryServiceStub(channels["inventory"]),
            shipping=shipping_pb2_grpc.ShippingServiceStub(channels["shipping"]),
            orders=OrderProjection(pool),
            changes=OrderChanges(pool),
        )
        client = await connect_temporal(settings)
        assert settings.task_queue == stack.task_queue
        async with build_worker(
            client, settings, activities, extra_interceptors=[_Dying(death)]
        ) as worker:
            yield worker
    finally:
        for channel in channels.values():
            await channel.close()
        await pool.close()


# --------------------------------------------------------------------- reads


async def task_failures(temporal: WorkflowEnvironment, order_id: str) -> int:
    handle = temporal.client.get_workflow_handle(order_id)
    events = [event.event_type async for event in handle.fetch_history_events()]
    return events.count(EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)


async def lost_a_task(temporal: WorkflowEnvironment, order_id: str) -> None:
    await eventually(
        lambda: task_failures(temporal, order_id), lambda failures: failures >= 1, within=WITHIN
    )


def elsewhere() -> address_pb2.PostalAddress:
    new = address(name="Grace Hopper")
    new.line1 = "2 Other Road"
    return new


async def get(stack: Stack, order_id: str) -> pb.Order:
    return (await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order_id))).order


async def shipment_of(stack: Stack, order_id: str) -> shipping_pb2.Shipment | None:
    try:
        answer = await stack.shipping.GetShipment(
            shipping_pb2.GetShipmentRequest(order_id=order_id)
        )
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        return None
    return answer.shipment


async def charged(stack: Stack, order_id: str) -> payments_pb2.Payment:
    """The order's one payment, once the lost task has charged it."""
    [payment] = await eventually(
        lambda: payments_of(stack, order_id), lambda payments: len(payments) == 1
    )
    return payment


# --------------------------------------------------------------------- tests


async def test_a_task_lost_after_the_booking_keeps_the_address_it_booked_to(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    death = Death(books, after=True)
    async with real_worker(stack, death):
        sku = await stock_sku(stack, quantity=3, price_minor=1100)
        order = await place(stack, order_request(sku, quantity=2))
        await lost_a_task(temporal, order.order_id)
        # The lost task booked the parcel, and wrote the order as shipped in
        # the same step, before it died. Each retry runs every step again,
        # under the same keys and newer versions, writing each state again on
        # its way to SHIPPED: the booking fence is what refuses the change.
        booked = await shipment_of(stack, order.order_id)
        assert booked is not None and booked.address == address()
        assert (await get(stack, order.order_id)).state in SAGA_STATES

        code, error = await rpc_error(
            stack.orders.UpdateShippingAddress(
                pb.UpdateShippingAddressRequest(
                    order_id=order.order_id, shipping_address=elsewhere()
                )
            )
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert error.reason is Reason.ALREADY_SHIPPED
        await death.again()

        death.on = False
        seen = await wait_for(stack, order.order_id, (SHIPPED,), within=WITHIN)

    assert seen[-1].shipping_address == address()
    shipped = await get(stack, order.order_id)
    assert shipped.state == SHIPPED
    assert shipped.shipping_address == address()
    shipment = await shipment_of(stack, order.order_id)
    assert shipment is not None
    assert shipment.state == shipping_pb2.SHIPMENT_STATE_BOOKED
    assert shipment.address == shipped.shipping_address
    assert shipment.tracking_number == shipped.tracking_number
    payments = await payments_of(stack, order.order_id)
    assert [(p.amount_minor, p.refunded_amount_minor, p.state) for p in payments] == [
        (shipped.total.amount_minor, 0, payments_pb2.PAYMENT_STATE_CAPTURED)
    ]
    assert shipped.total.amount_minor == 2200
    assert await stock_of(stack, sku) == (1, 0)
    assert await task_failures(temporal, order.order_id) >= 1


async def test_an_address_change_while_the_task_before_the_booking_is_lost_is_where_it_ships(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    death = Death(books)
    async with real_worker(stack, death):
        sku = await stock_sku(stack, quantity=2)
        order = await place(stack, order_request(sku))
        await lost_a_task(temporal, order.order_id)
        await charged(stack, order.order_id)  # the lost task charged the card

        changed = (
            await stack.orders.UpdateShippingAddress(
                pb.UpdateShippingAddressRequest(
                    order_id=order.order_id, shipping_address=elsewhere()
                )
            )
        ).order
        assert changed.shipping_address == elsewhere()
        assert (await get(stack, order.order_id)).shipping_address == elsewhere()
        await death.again()
        assert await shipment_of(stack, order.order_id) is None  # nothing booked yet

        death.on = False
        seen = await wait_for(stack, order.order_id, (SHIPPED,), within=WITHIN)

    assert seen[-1].shipping_address == elsewhere()
    shipped = await get(stack, order.order_id)
    assert shipped.shipping_address == elsewhere()
    shipment = await shipment_of(stack, order.order_id)
    assert shipment is not None
    assert shipment.state == shipping_pb2.SHIPMENT_STATE_BOOKED
    assert shipment.address == elsewhere()
    [payment] = await payments_of(stack, order.order_id)
    assert payment.amount_minor == shipped.total.amount_minor
    assert payment.refunded_amount_minor == 0
    assert await stock_of(stack, sku) == (1, 0)
    assert await task_failures(temporal, order.order_id) >= 1


async def test_a_cancellation_while_the_task_before_the_booking_is_lost_undoes_it_all(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    death = Death(books)
    async with real_worker(stack, death):
        sku = await stock_sku(stack, quantity=3, price_minor=800)
        order = await place(stack, order_request(sku, quantity=2))
        await lost_a_task(temporal, order.order_id)
        # The lost task reserved, charged and committed.
        await charged(stack, order.order_id)
        assert await stock_of(stack, sku) == (1, 0)

        cancelling = (
            await stack.orders.CancelOrder(
                pb.CancelOrderRequest(order_id=order.order_id, reason="changed my mind")
            )
        ).order
        assert cancelling.state == pb.ORDER_STATE_CANCELLING

        death.on = False
        seen = await wait_for(stack, order.order_id, within=WITHIN)

    assert seen[-1].state == pb.ORDER_STATE_CANCELLED
    assert (await get(stack, order.order_id)).state == pb.ORDER_STATE_CANCELLED
    [payment] = await payments_of(stack, order.order_id)
    assert payment.state == payments_pb2.PAYMENT_STATE_REFUNDED
    assert payment.refunded_amount_minor == payment.amount_minor == 1600
    assert await stock_of(stack, sku) == (3, 0)
    shipment = await shipment_of(stack, order.order_id)
    assert shipment is None or shipment.state == shipping_pb2.SHIPMENT_STATE_CANCELLED
    assert await task_failures(temporal, order.order_id) >= 1
