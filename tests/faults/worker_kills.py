"""Killing the worker in a given step of the saga: reserve, charge, commit or booking.

Whether an order is in a step is read from the service the step calls. The
order's own progress (GetOrder with ORDER_VIEW_FULL) would say it too, but it
asks the workflow, which answers no query while it runs a local activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

import grpc

from clients.proto.inventory.v1 import inventory_pb2 as inv
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.payments.v1 import payments_pb2 as pay
from clients.proto.shipping.v1 import shipping_pb2 as ship
from tests.faults.fault import Context, Fault, Injection
from tests.faults.mix import Kind
from tests.faults.stack import Platform

# How many orders one look for a step's evidence samples at most.
SAMPLE = 16
# Pauses between looks, so that looking neither floods the services with
# reads nor keeps the worker frozen.
RECHECK_SECONDS = 0.02
THAW_SECONDS = 0.2

# Whether an order is in the step, checked while the worker is frozen.
Evidence = Callable[[Platform, str], Awaitable[bool]]


async def no_reservation_yet(platform: Platform, order_id: str) -> bool:
    """The order is stored and holds no stock yet: reserving is its next step."""
    try:
        await platform.stack.inventory.GetReservation(
            inv.GetReservationRequest(order_id=order_id), timeout=1
        )
    except grpc.aio.AioRpcError as error:
        return error.code() == grpc.StatusCode.NOT_FOUND
    return False


async def no_payment_yet(platform: Platform, order_id: str) -> bool:
    """Stock is reserved and no payment exists: the charge is under way."""
    answer = await platform.stack.payments.ListPayments(
        pay.ListPaymentsRequest(order_id=order_id), timeout=1
    )
    return not answer.payments


async def reservation_held(platform: Platform, order_id: str) -> bool:
    """The order's stock is still held, not committed (and it was paid: commit is next)."""
    answer = await platform.stack.inventory.GetReservation(
        inv.GetReservationRequest(order_id=order_id), timeout=1
    )
    return answer.reservation.state == inv.RESERVATION_STATE_RESERVED


async def shipment_booking(platform: Platform, order_id: str) -> bool:
    """The carrier holds a booking request not yet confirmed: the step is waiting on it."""
    answer = await platform.stack.shipping.GetShipment(
        ship.GetShipmentRequest(order_id=order_id), timeout=1
    )
    return answer.shipment.state == ship.SHIPMENT_STATE_BOOKING


# Waits for a moment at which orders may be in a step; returns them ([] when
# the wait is over: the load ended or the deadline, on the loop's clock, passed).
Moment = Callable[[Context, float], Awaitable[list[str]]]


async def stored_not_reserved(ctx: Context, deadline: float) -> list[str]:
    """Orders stored as PENDING right now: reserving is what they do next.

    A fresh read, not the tracker's, because an order may pass through
    PENDING in milliseconds.
    """
    orders = ctx.platform.stack.orders
    request = pb.ListOrdersRequest(
        customer_id=ctx.load.tracker.customer_id,
        states=[pb.ORDER_STATE_PENDING],
        page_size=SAMPLE,
    )
    while not _over(ctx, deadline):
        with contextlib.suppress(grpc.aio.AioRpcError):
            page = await orders.ListOrders(request, timeout=1)
            if page.orders:
                return [order.order_id for order in page.orders]
        await asyncio.sleep(0.01)
    return []


def in_state(state: int, kinds: frozenset[Kind] = frozenset(Kind)) -> Moment:
    """Orders of these kinds that the tracker last saw in `state`."""

    async def wait(ctx: Context, deadline: float) -> list[str]:
        while not _over(ctx, deadline):
            found = [
                order_id
                for order_id in ctx.load.tracker.in_state(state)
                if ctx.load.kind_of(order_id) in kinds
            ]
            if found:
                return found[:SAMPLE]
            await asyncio.sleep(0.02)
        return []

    return wait


async def payment_captured(ctx: Context, deadline: float) -> list[str]:
    """A slow card's payment was just captured: committing the stock comes next."""
    waiting = in_state(pb.ORDER_STATE_RESERVED, frozenset({Kind.SLOW}))
    while candidates := await waiting(ctx, deadline):
        answers = await asyncio.gather(
            *(no_payment_yet(ctx.platform, order_id) for order_id in candidates),
            return_exceptions=True,
        )
        paid = [o for o, unpaid in zip(candidates, answers, strict=True) if unpaid is False]
        if paid:
            return paid
        await asyncio.sleep(0.005)  # the window is short: look again at once
    return []


def _over(ctx: Context, deadline: float) -> bool:
    return ctx.load.done.is_set() or asyncio.get_running_loop().time() > deadline


class WorkerKill(Fault):
    """SIGKILL of the worker while an order is in `step`; restarted after a pause.

    At each `moment`, the orders of that moment are checked through the
    public API (`evidence`); when one of them looks in the step, the worker is
    frozen (SIGSTOP) and they are checked again: if one still is, the frozen
    worker is killed, otherwise it resumes (SIGCONT) and the next moment is
    awaited. Freezing makes fast steps (reserving and committing take
    milliseconds) as catchable as slow ones, and the check is made on the
    state the worker died in; checking before freezing keeps the worker from
    being frozen in vain.
    """

    def __init__(self, name: str, step: str, moment: Moment, evidence: Evidence) -> None:
        self.name = name
        self.summary = f"worker SIGKILL during {step}"
        self._step = step
        self._moment = moment
        self._evidence = evidence

    async def inject(self, ctx: Context) -> Injection:
        worker = ctx.platform.stack.process("worker")
        caught, freezes = await self._catch(ctx)
        injected_at = ctx.load.now()
        worker.kill()
        await asyncio.sleep(ctx.timing.restart_pause)
        worker.start()
        healed_at = ctx.load.now()
        if caught:
            what = f"{caught} order(s) in {self._step} at the kill; worker frozen {freezes} time(s)"
        else:
            what = f"no order caught in {self._step} ({freezes} freezes); killed anyway"
        return Injection(injected_at, healed_at, what, on_target=caught > 0)

    async def _in_step(self, ctx: Context, orders: list[str]) -> list[str]:
        answers = await asyncio.gather(
            *(self._evidence(ctx.platform, order_id) for order_id in orders),
            return_exceptions=True,
        )
        return [order_id for order_id, yes in zip(orders, answers, strict=True) if yes is True]

    async def _catch(self, ctx: Context) -> tuple[int, int]:
        """Freezes the worker when an order looks in the step; (orders caught, freezes)."""
        popen = ctx.platform.stack.process("worker").popen
        assert popen is not None
        deadline = asyncio.get_running_loop().time() + ctx.timing.trigger_timeout
        freezes = 0
        while candidates := await self._moment(ctx, deadline):
            likely = await self._in_step(ctx, candidates)
            if not likely:
                await asyncio.sleep(RECHECK_SECONDS)
                continue
            freezes += 1
            popen.send_signal(signal.SIGSTOP)
            try:
                caught = await self._in_step(ctx, likely)
            except BaseException:
                popen.send_signal(signal.SIGCONT)
                raise
            if caught:
                return len(caught), freezes  # still frozen: the kill comes next
            popen.send_signal(signal.SIGCONT)
            await asyncio.sleep(THAW_SECONDS)
        return 0, freezes
