"""Changes of mind: cancelling an order, changing its address, confirming its delivery.

A cancellation or a new address is taken behind the fences of changes.py,
stored before it is answered, and then passed on to the order's workflow
(through the gateway, gateway.py); an order placed before the fences, or
stored by its workflow first, is changed by its workflow instead, as an
update. A delivery report is always an update of the workflow. A change
asked of an order whose workflow has ended is refused with the reason the
projection gives (shipped, or failed or cancelled).
"""

from __future__ import annotations

from typing import Any, NoReturn

from clients.errors import Error, Reason
from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2 as pb
from server.orders.changes import OrderChanges, Verdict
from server.orders.gateway import WorkflowGateway
from server.orders.reads import OrderReads
from server.orders.repository import StoredOrder
from worker import contract as order_workflow
from worker.model import SHIPPED_STATES, Address


def _refuse(verdict: Verdict, order: pb.Order, shipped: str) -> NoReturn:
    """Raises the refusal of a change the fences did not take."""
    details = {"order_id": order.order_id}
    if verdict is Verdict.ALREADY_SHIPPED:
        raise Error(Reason.ALREADY_SHIPPED, shipped, details)
    raise Error(Reason.ORDER_FINISHED, "the order has failed or been cancelled", details)


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


class ChangesOfMind:
    def __init__(
        self, *, changes: OrderChanges, reads: OrderReads, workflows: WorkflowGateway
    ) -> None:
        self._changes = changes
        self._reads = reads
        self._workflows = workflows

    async def cancel(self, order_id: str, reason: str) -> pb.Order:
        """Cancels an order (checked, in the caller's scope); returns it CANCELLING or CANCELLED.

        CancelOrder's way, and OperatorService.CancelAndCompensate's.
        """
        verdict = await self._changes.cancel(order_id, reason)
        if verdict is Verdict.ACCEPTED:
            # Stored: the workflow is told, and a step it runs now cannot
            # outrun it (server/orders/changes.py). Should Temporal be out of
            # reach, a retry of the same request is taken again and told again.
            if not await self._workflows.signal(order_id, order_workflow.CANCEL_ORDER, reason):
                # Its workflow was ended from outside while the order was in
                # flight: an operator settles it (server/orders/abandoned.py),
                # and the change stays stored as what the caller asked for.
                raise Error(
                    Reason.ORDER_FINISHED,
                    "the order's workflow has ended; it is left for an operator to settle",
                    {"order_id": order_id},
                )
            return await self._reads.latest(order_id)
        if verdict is Verdict.NOT_FENCED:
            return await self._cancel_through_workflow(order_id, reason)
        stored = await self._reads.stored(order_id)
        # A repeat of a cancellation that went through (its answer lost,
        # say) gets the cancelled order, as repeating it earlier would have.
        if stored.order.state != pb.ORDER_STATE_CANCELLED:
            _refuse(verdict, stored.order, "the order has shipped")
        return stored.order

    async def _cancel_through_workflow(self, order_id: str, reason: str) -> pb.Order:
        """Cancels an order whose changes are not fenced: its workflow decides."""
        return await self._through_workflow(
            order_id, order_workflow.CANCEL, reason, ended_as=pb.ORDER_STATE_CANCELLED
        )

    async def change_address(self, order_id: str, address: address_pb2.PostalAddress) -> pb.Order:
        """Changes the order's shipping address, unless its booking was sent; returns the order."""
        verdict = await self._changes.change_address(order_id, address)
        if verdict is Verdict.ACCEPTED:
            # The booking reads it when it is sent (server/orders/changes.py).
            return await self._reads.latest(order_id)
        if verdict is Verdict.NOT_FENCED:
            return await self._change_address_through_workflow(order_id, address)
        stored = await self._reads.stored(order_id)
        _refuse(verdict, stored.order, "the order is already being shipped")

    async def _change_address_through_workflow(
        self, order_id: str, address: address_pb2.PostalAddress
    ) -> pb.Order:
        """Changes the address of an order whose changes are not fenced: its workflow decides."""
        return await self._through_workflow(
            order_id, order_workflow.UPDATE_SHIPPING_ADDRESS, Address.from_proto(address)
        )

    async def confirm_delivery(self, order_id: str) -> pb.Order:
        """The carrier's delivery report, passed to the order's workflow; returns the order."""
        return await self._through_workflow(
            order_id, order_workflow.CONFIRM_DELIVERY, ended_as=pb.ORDER_STATE_DELIVERED
        )

    async def _through_workflow(
        self,
        order_id: str,
        update: order_workflow.Update[pb.Order],
        *args: Any,
        ended_as: pb.OrderState.ValueType | None = None,
    ) -> pb.Order:
        """Asks the order's workflow to make a change; returns the order it answers.

        When the workflow has ended, the projection says how: an order that
        ended as the change asks (`ended_as`: a repeat whose answer was lost)
        is answered as it is stored, and any other change is refused.
        """
        order = await self._workflows.update(order_id, update, *args)
        if order is not None:
            return order
        stored = await self._reads.stored(order_id)
        if ended_as is None or stored.order.state != ended_as:
            _refuse_finished(stored)
        return stored.order
