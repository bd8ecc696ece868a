"""Orders whose workflow ended outside the saga: noticed, flagged, and what they hold listed.

The saga always ends its own workflow by completing it, whatever becomes of
the order (delivered, cancelled or failed, every step undone). A workflow
that ends any other way was ended from outside: terminated or cancelled by
someone who reaches Temporal, timed out by a timeout set at its start, or
failed. Temporal should be configured so that nobody but operators can do
that (README, Security), but whoever can must not leave an order silently
stuck: paid and never shipped, or SHIPPED forever with nobody told.

So every ORDER_AUDIT_SECONDS the orders service asks Temporal's visibility
for order workflows closed other than by completing, since its last look.
For each whose order is still in progress in the projection, and belongs to
that run (server/orders/projection.py), it records how the run ended and
what the order still holds (payments, its stock reservation, its shipment,
read from the services that keep them) in `orders.order_attention`, writes
a version of the order flagged `attention_required`, logs an error and
counts `orders_abandoned_total`. The GetOrder full view shows operators the
record. A run that ended before the order was ever stored (a start the
worker refused, say) left nothing to undo and is passed over.

Sweeps from several front doors at once are safe: the record is written
once per order. Putting the order right is an operator's job.

The same pass reconciles the projection with the workflows that did end by
completing: an order whose workflow completed while the projection still
shows it in progress lost its last write (refused by the database, say, or
the order was rewritten by hand). Its workflow's result is the order as the
saga left it, so that is written again, and `orders_projection_repaired_total`
counts it (`outcome="repaired"`); a result the database still refuses is
logged as an error and counted (`outcome="refused"`) for an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg
import grpc
import structlog
from prometheus_client import Counter
from temporalio.service import RPCError

from clients.proto.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from clients.proto.orders.v1 import orders_pb2
from clients.proto.payments.v1 import payments_pb2, payments_pb2_grpc
from clients.proto.shipping.v1 import shipping_pb2, shipping_pb2_grpc
from server.orders.gateway import WorkflowGateway
from server.orders.projection import OrderProjection, UnstorableOrder
from worker import contract
from worker.model import TERMINAL_STATES

log = structlog.get_logger(__name__)

ABANDONED = Counter(
    "orders_abandoned_total",
    "Orders whose workflow ended outside the saga (terminated, timed out, failed, cancelled)",
    ["status"],
)

REPAIRED = Counter(
    "orders_projection_repaired_total",
    "Orders whose workflow completed while the projection showed them in progress,"
    " written again from the workflow's result",
    ["outcome"],
)

# Closed otherwise than by completing (Temporal's visibility names).
ENDED_FROM_OUTSIDE = ("Terminated", "TimedOut", "Failed", "Canceled")
# Completed workflows are many (every order ends so): the first pass of a
# process looks back this far for them, and each pass checks the projection
# for this many at a time.
FIRST_LOOK_BACK_COMPLETED = timedelta(hours=1)
COMPLETED_BATCH = 500
# Visibility is eventually consistent: each sweep looks back over this much
# of the time the previous one covered.
OVERLAP = timedelta(minutes=2)
# The first sweep of a process looks this far back.
FIRST_LOOK_BACK = timedelta(days=7)
CALL_TIMEOUT = 5.0

T = TypeVar("T")


@dataclass(frozen=True)
class Held:
    """What an order holds at the partners, as they answered."""

    payments: list[payments_pb2.Payment]
    reservation: inventory_pb2.Reservation | None
    shipment: shipping_pb2.Shipment | None
    # A partner that did not answer, one line each.
    unknown: list[str]

    def lines(self) -> list[str]:
        """One line per thing held; a partner that did not answer says so."""
        lines = list(self.unknown)
        lines += [
            f"payment {p.payment_id}: {payments_pb2.PaymentState.Name(p.state)}"
            f" {p.amount_minor} {p.currency_code}, refunded {p.refunded_amount_minor}"
            for p in self.payments
        ]
        if self.reservation is not None:
            goods = ", ".join(f"{line.sku} x{line.quantity}" for line in self.reservation.lines)
            state = inventory_pb2.ReservationState.Name(self.reservation.state)
            lines.append(f"stock reservation: {state} {goods}")
        if self.shipment is not None:
            shipment = self.shipment
            state = shipping_pb2.ShipmentState.Name(shipment.state)
            lines.append(
                f"shipment {shipment.shipment_id}: {state} {shipment.tracking_number}".rstrip()
            )
        return lines or ["nothing: no payment, reservation or shipment"]


@dataclass(frozen=True)
class Holdings:
    """The partners an order's holdings are read from (as the front door)."""

    payments: payments_pb2_grpc.PaymentServiceStub
    inventory: inventory_pb2_grpc.InventoryServiceStub
    shipping: shipping_pb2_grpc.ShippingServiceStub

    async def of(self, order_id: str) -> list[str]:
        """One line per thing the order holds; a partner that does not answer says so."""
        return (await self.read(order_id)).lines()

    async def read(self, order_id: str) -> Held:
        """The order's payments, reservation and shipment, read from each partner."""
        unknown: list[str] = []
        payments = await _read("payments", unknown, lambda: self._payments(order_id))
        reservation = await _read("stock", unknown, lambda: self._reservation(order_id))
        shipment = await _read("shipment", unknown, lambda: self._shipment(order_id))
        return Held(payments or [], reservation, shipment, unknown)

    async def _payments(self, order_id: str) -> list[payments_pb2.Payment]:
        response = await self.payments.ListPayments(
            payments_pb2.ListPaymentsRequest(order_id=order_id), timeout=CALL_TIMEOUT
        )
        return list(response.payments)

    async def _reservation(self, order_id: str) -> inventory_pb2.Reservation:
        response = await self.inventory.GetReservation(
            inventory_pb2.GetReservationRequest(order_id=order_id), timeout=CALL_TIMEOUT
        )
        return response.reservation

    async def _shipment(self, order_id: str) -> shipping_pb2.Shipment:
        response = await self.shipping.GetShipment(
            shipping_pb2.GetShipmentRequest(order_id=order_id), timeout=CALL_TIMEOUT
        )
        return response.shipment


async def _read(what: str, unknown: list[str], call: Callable[[], Awaitable[T]]) -> T | None:
    """The partner's answer; None when it holds nothing, or did not answer (said in `unknown`)."""
    try:
        return await call()
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return None
        unknown.append(f"{what}: unknown, the service answered {error.code().name}")
        return None


class AbandonedOrders:
    def __init__(
        self,
        workflows: WorkflowGateway,
        pool: asyncpg.Pool,
        projection: OrderProjection,
        holdings: Holdings,
        *,
        task_queue: str,
        workflow_type: str = contract.NAME,
    ) -> None:
        self._workflows = workflows
        self._pool = pool
        self._projection = projection
        self._holdings = holdings
        self._workflow_type = workflow_type
        self._task_queue = task_queue
        self._since = datetime.now(UTC) - FIRST_LOOK_BACK
        self._completed_since = datetime.now(UTC) - FIRST_LOOK_BACK_COMPLETED

    async def sweep(self) -> list[str]:
        """Looks once; returns the ids of the orders newly flagged."""
        started = datetime.now(UTC)
        statuses = ", ".join(f"'{status}'" for status in ENDED_FROM_OUTSIDE)
        flagged = []
        async for run in self._workflows.closed_runs(
            self._closed(f"ExecutionStatus IN ({statuses})", self._since)
        ):
            if await self._notice(run.workflow_id, run.run_id, run.status or "UNKNOWN"):
                flagged.append(run.workflow_id)
        self._since = started
        await self._reconcile_completed()
        return flagged

    def _closed(self, status: str, since: datetime) -> str:
        """The visibility query for this queue's orders closed as `status` says, since `since`."""
        return (
            f"WorkflowType = '{self._workflow_type}' AND TaskQueue = '{self._task_queue}'"
            f" AND {status} AND CloseTime > '{(since - OVERLAP).isoformat()}'"
        )

    async def _reconcile_completed(self) -> list[str]:
        """Writes again the orders whose workflow completed ahead of the projection."""
        started = datetime.now(UTC)
        repaired: list[str] = []
        runs: dict[str, str] = {}
        async for run in self._workflows.closed_runs(
            self._closed("ExecutionStatus = 'Completed'", self._completed_since)
        ):
            runs[run.workflow_id] = run.run_id
            if len(runs) >= COMPLETED_BATCH:
                repaired += await self._repair_lagging(runs)
                runs = {}
        repaired += await self._repair_lagging(runs)
        self._completed_since = started
        return repaired

    async def _repair_lagging(self, runs: dict[str, str]) -> list[str]:
        if not runs:
            return []
        lagging = await self._pool.fetch(
            """SELECT order_id, version, fingerprint, run_id FROM orders.orders
                WHERE order_id = ANY($1::text[]) AND state <> ALL($2::text[])""",
            list(runs),
            [orders_pb2.OrderState.Name(state) for state in TERMINAL_STATES],
        )
        repaired = []
        for row in lagging:
            run_id = runs[row["order_id"]]
            if row["run_id"] is not None and row["run_id"] != run_id:
                continue  # another run's: one started by someone else, refused
            if await self._repair(row, run_id):
                repaired.append(row["order_id"])
        return repaired

    async def _repair(self, row: asyncpg.Record, run_id: str) -> bool:
        order_id = row["order_id"]
        final = await self._workflows.final_order(order_id, run_id)
        try:
            written = await self._projection.record(
                final, row["version"] + 1, row["fingerprint"], run_id=run_id
            )
        except UnstorableOrder as error:
            REPAIRED.labels("refused").inc()
            log.error(
                "the projection lags a completed order and refuses its last version;"
                " the order needs an operator",
                order_id=order_id,
                state=orders_pb2.OrderState.Name(final.state),
                error=str(error),
            )
            return False
        if written:
            REPAIRED.labels("repaired").inc()
            log.warning(
                "the projection lagged a completed order; written again from its workflow",
                order_id=order_id,
                state=orders_pb2.OrderState.Name(final.state),
            )
        return written

    async def _notice(self, order_id: str, run_id: str, status: str) -> bool:
        row = await self._pool.fetchrow(
            """SELECT o.message, o.version, o.fingerprint, o.run_id,
                      a.order_id IS NOT NULL AS noticed
                 FROM orders.orders o
                 LEFT JOIN orders.order_attention a USING (order_id)
                WHERE o.order_id = $1""",
            order_id,
        )
        if row is None or row["noticed"] or row["message"] is None:
            return False  # never stored, or already noticed
        if row["run_id"] is not None and row["run_id"] != run_id:
            return False  # another run's: one started by someone else, refused
        order = orders_pb2.Order.FromString(row["message"])
        if order.state in TERMINAL_STATES:
            return False  # the saga had finished the order
        holdings = await self._holdings.of(order_id)
        inserted = await self._pool.fetchval(
            """INSERT INTO orders.order_attention (order_id, run_id, workflow_status, holdings)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
            order_id,
            run_id,
            status,
            holdings,
        )
        if not inserted:
            return False  # another front door noticed it first
        order.attention_required = True
        order.update_time.FromDatetime(datetime.now(UTC))
        await self._projection.record(order, row["version"] + 1, row["fingerprint"], run_id=run_id)
        ABANDONED.labels(status.lower()).inc()
        log.error(
            "order workflow ended outside the saga; the order needs an operator",
            order_id=order_id,
            run_id=run_id,
            workflow_status=status,
            state=orders_pb2.OrderState.Name(order.state),
            holdings=holdings,
        )
        return True


def start_sweeping(abandoned: AbandonedOrders, every_seconds: float) -> asyncio.Task[None] | None:
    """Sweeps every `every_seconds` in the background (0: never)."""
    if every_seconds <= 0:
        return None

    async def loop() -> None:
        while True:
            try:
                await abandoned.sweep()
            except (RPCError, OSError, asyncpg.PostgresError) as error:
                log.warning("sweep for abandoned orders failed; retrying later", error=str(error))
            except Exception:
                # A bug must not end the sweeps for the life of the process.
                log.exception("sweep for abandoned orders failed")
            await asyncio.sleep(every_seconds)

    return asyncio.create_task(loop(), name="abandoned-orders")


async def stop_sweeping(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
