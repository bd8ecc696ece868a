"""Reading orders: GetOrder, ListOrders and WatchOrder's work.

Reads come from the Postgres projection the workflow keeps current, through
the cache of recently read orders (cache.py) and that of recent ListOrders
answers (page_cache.py); GetOrder and ListOrders may read a replica.
GetOrder's full view adds the workflow's own account of its progress, asked
of it through the gateway (gateway.py) and bounded, with an answer from the
projection while the workflow is busy. A watcher is woken by
the projection's NOTIFYs (events.py).

A customer service sees only the orders of the customer its token names:
any other customer's order is, to it, an order that does not exist
(NOT_FOUND), and it is told why an order failed in the error vocabulary's
words (disclosure.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator

from clients.errors import Error, Reason
from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import customer_scope
from server.core.validation import Violations
from server.orders.cache import OrderCache
from server.orders.disclosure import disclosed, disclosed_progress, shows_failure
from server.orders.events import OrderEvents
from server.orders.gateway import NoAnswer, WorkflowGateway
from server.orders.listing import list_orders_response
from server.orders.page_cache import EVERY_CUSTOMER, PageCache
from server.orders.repository import OrderRepository, StoredOrder, encode_cursor, page_after
from worker.model import TERMINAL_STATES

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# A watcher re-reads on its own this often, in case a notification was lost.
WATCH_RECHECK_SECONDS = 15.0
# What ListOrders takes as a state to filter by.
_ORDER_STATES = frozenset(pb.OrderState.values()) - {pb.ORDER_STATE_UNSPECIFIED}
# The step an order in each state is on, when the workflow cannot say.
_STEP_OF_STATE = {
    pb.ORDER_STATE_PENDING: "reserve_stock",
    pb.ORDER_STATE_RESERVED: "charge_payment",
    pb.ORDER_STATE_PAID: "commit_stock",
    pb.ORDER_STATE_SHIPPING: "book_shipment",
}


def _shown(stored: StoredOrder, order_id: str, scope: str | None) -> StoredOrder:
    """`stored`, if a caller acting for `scope` (None: any customer) may see it."""
    if scope is not None and stored.order.customer_id != scope:
        raise Error(Reason.ORDER_NOT_FOUND, f"no order {order_id}", {"order_id": order_id})
    return stored


def _busy(order: pb.Order) -> pb.OrderProgress:
    """Progress while the workflow runs a step and cannot answer: what the projection says."""
    return pb.OrderProgress(
        workflow_running=True,
        busy=True,
        current_step=_STEP_OF_STATE.get(order.state, ""),
        cancel_requested=order.state == pb.ORDER_STATE_CANCELLING,
    )


class OrderReads:
    def __init__(
        self,
        *,
        orders: OrderRepository,
        workflows: WorkflowGateway,
        events: OrderEvents,
        cache: OrderCache | None = None,
        pages: PageCache | None = None,
        replica: OrderRepository | None = None,
    ) -> None:
        self._orders = orders
        self._workflows = workflows
        self._events = events
        # Without them (tests, tools), every read goes to the database.
        self._cache = cache or OrderCache(size=0)
        # Pages read from a replica are not kept: one that lags could answer
        # with what a NOTIFY had already made the cache forget.
        self._pages = pages if pages is not None and replica is None else PageCache(max_bytes=0)
        # GetOrder and ListOrders may read a replica; every other read is of
        # the primary, which the NOTIFYs come from (docs/scaling.md).
        self._replica = replica

    # ------------------------------------------------------------ one order

    async def stored(self, order_id: str, *, replica_ok: bool = False) -> StoredOrder:
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

    async def visible(self, order_id: str, *, replica_ok: bool = False) -> StoredOrder:
        """The stored order, if the caller may see it: another customer's is NOT_FOUND."""
        stored = await self.stored(order_id, replica_ok=replica_ok)
        return _shown(stored, order_id, customer_scope())

    async def latest(self, order_id: str) -> pb.Order:
        """The order as stored now, not as cached: with the change just accepted.

        The caches forget it too, so that the caller's next read shows the change.
        """
        stored = await self._orders.get(order_id)
        if stored is None:
            raise Error(Reason.ORDER_NOT_FOUND, f"no order {order_id}", {"order_id": order_id})
        self._events.written_here(order_id, stored.order.customer_id)
        return stored.order

    async def get_order(self, request: pb.GetOrderRequest) -> bytes:
        """GetOrderResponse's bytes: for the basic view, those of the cached version itself
        unless the caller is to see its failure in other words (disclosure.py)."""
        order_id, scope = request.order_id, customer_scope()
        # A cached order is answered without awaiting anything (the hottest call).
        stored = self._cache.get(order_id) or await self.stored(order_id, replica_ok=True)
        stored = _shown(stored, order_id, scope)
        if request.view != pb.ORDER_VIEW_FULL:
            if scope is None or not shows_failure(stored.order):
                return stored.get_order_answer
            return disclosed(pb.GetOrderResponse(order=stored.order)).SerializeToString()
        progress = await self.progress(stored)
        answer = disclosed(pb.GetOrderResponse(order=stored.order, progress=progress))
        return answer.SerializeToString()

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
        account = await self._workflows.progress(stored.order.order_id)
        if account is NoAnswer.BUSY:
            return _busy(stored.order)
        if account is NoAnswer.NOT_RUNNING:
            return pb.OrderProgress(workflow_running=False)
        progress = account.progress
        message = pb.OrderProgress(
            workflow_running=account.running,
            current_step=progress.current_step,
            pending_compensations=progress.pending_compensations,
            failing_compensations=progress.failing_compensations,
            cancel_requested=progress.cancel_requested,
            # A local step's attempts are counted by the workflow itself.
            current_step_attempt=progress.current_step_attempt,
            last_attempt_failure=progress.last_attempt_failure,
        )
        failure_type = ""  # a local step's is not kept by the workflow
        for pending in account.pending_steps:
            if pending.name == progress.current_step:
                message.current_step_attempt = pending.attempt
                message.last_attempt_failure = pending.last_failure
                failure_type = pending.failure_type
        if progress.current_step and not message.current_step_attempt:
            message.current_step_attempt = 1
        return disclosed_progress(message, failure_type)

    # ----------------------------------------------------------- listing

    async def list_orders(self, request: pb.ListOrdersRequest) -> bytes:
        """ListOrdersResponse's bytes, framed from the stored orders (listing.py).

        An answer given before to the same request, in the same scope, is
        given again while no order of its customer was written since
        (page_cache.py): the request was valid then and is valid now.
        """
        scope = customer_scope()
        customer_id = (
            scope if scope is not None and not request.customer_id else request.customer_id
        )
        asked = (
            scope is not None,
            request.customer_id,
            tuple(request.states),
            request.page_token,
            request.page_size,
        )
        answer = self._pages.get(customer_id or EVERY_CUSTOMER, asked)
        if answer is not None:
            return answer
        ticket = self._pages.ticket()
        answer = await self._list_orders(request, scope)
        self._pages.put(customer_id or EVERY_CUSTOMER, asked, answer, ticket)
        return answer

    async def _list_orders(self, request: pb.ListOrdersRequest, scope: str | None) -> bytes:
        customer_id = request.customer_id
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
        after = page_after(request.page_token, filter_key, errors)
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

    # ---------------------------------------------------------- watching

    async def watch(self, order_id: str) -> AsyncIterator[pb.WatchOrderResponse]:
        """The order now, then each change of its state, until it ends."""
        # Subscribe before reading, so no change slips between the two.
        with self._events.watch(order_id) as changed:
            stored = await self.visible(order_id)
            last_version, last_state = stored.version, stored.order.state
            yield disclosed(pb.WatchOrderResponse(order=stored.order))
            while last_state not in TERMINAL_STATES:
                try:
                    await asyncio.wait_for(changed.wait(), WATCH_RECHECK_SECONDS)
                except TimeoutError:
                    pass
                changed.clear()
                for version, order in await self._orders.versions_after(order_id, last_version):
                    last_version = version
                    if order.state != last_state:
                        last_state = order.state
                        yield disclosed(pb.WatchOrderResponse(order=order))
                        if last_state in TERMINAL_STATES:
                            break
