"""A typed async client of operator.v1.OperatorService: finding and repairing orders.

Served by the front door (the same target as OrdersClient), to operators only.

async with OperatorClient("127.0.0.1:50051", caller_credentials(token_file=...)) as ops:
    async for order in ops.iter_search(attention_required_only=True):
        detail = await ops.get_order_detail(order.order_id)
        print(detail.progress.failing_compensations)
    await ops.retry_step("ord_...", note="payments is back")
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from clients.proto.operator.v1 import operator_pb2, operator_pb2_grpc
from clients.proto.orders.v1 import orders_pb2
from clients.service import ServiceClient

OperatorAction = operator_pb2.OperatorAction


def _timestamp(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


class OperatorClient(ServiceClient):
    """Searches orders, describes one, and acts on it (retry, cancel, resolve)."""

    @functools.cached_property
    def _stub(self) -> operator_pb2_grpc.OperatorServiceAsyncStub:
        # The generated stubs type an aio channel's stub as the Async one.
        return cast(
            "operator_pb2_grpc.OperatorServiceAsyncStub",
            operator_pb2_grpc.OperatorServiceStub(self.channel),
        )

    async def search_orders(
        self,
        *,
        states: Iterable[orders_pb2.OrderState.ValueType] = (),
        min_age_in_state: timedelta | None = None,
        attention_required_only: bool = False,
        failure_reason: str = "",
        customer_id: str = "",
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> operator_pb2.SearchOrdersResponse:
        """One page of the orders every given filter holds for, newest first.

        Times without a zone are taken as UTC. The page's `next_page_token`
        is empty on the last page; it works only with the same filters.
        """
        request = operator_pb2.SearchOrdersRequest(
            states=list(states),
            attention_required_only=attention_required_only,
            failure_reason=failure_reason,
            customer_id=customer_id,
            created_after=_timestamp(created_after),
            created_before=_timestamp(created_before),
            page_size=page_size,
            page_token=page_token,
        )
        if min_age_in_state is not None:
            request.min_age_in_state.CopyFrom(_duration(min_age_in_state))
        return await self._unary(self._stub.SearchOrders, request)

    async def iter_search(self, **filters: Any) -> AsyncIterator[orders_pb2.Order]:
        """Every order the filters of `search_orders` hold for, newest first, page after page."""
        token = ""
        while True:
            page = await self.search_orders(**filters, page_token=token)
            for order in page.orders:
                yield order
            token = page.next_page_token
            if not token:
                return

    async def get_order_detail(self, order_id: str) -> operator_pb2.GetOrderDetailResponse:
        """The order, its workflow's progress and status, its holdings, history and actions."""
        request = operator_pb2.GetOrderDetailRequest(order_id=order_id)
        return await self._unary(self._stub.GetOrderDetail, request)

    async def retry_step(
        self, order_id: str, *, note: str, request_id: str | None = None
    ) -> operator_pb2.RetryStepResponse:
        """Asks the order's workflow to retry the failing step or compensation now.

        Like every action, idempotent by `request_id` (one made here when not
        given, and sent on every attempt of the call).
        """
        request = operator_pb2.RetryStepRequest(
            request_id=request_id or str(uuid.uuid4()), order_id=order_id, note=note
        )
        return await self._unary(self._stub.RetryStep, request)

    async def cancel_and_compensate(
        self, order_id: str, *, note: str, request_id: str | None = None
    ) -> operator_pb2.CancelAndCompensateResponse:
        """Cancels the order (the note is its reason); every step done is undone."""
        request = operator_pb2.CancelAndCompensateRequest(
            request_id=request_id or str(uuid.uuid4()), order_id=order_id, note=note
        )
        return await self._unary(self._stub.CancelAndCompensate, request)

    async def mark_resolved(
        self, order_id: str, *, note: str, request_id: str | None = None
    ) -> operator_pb2.MarkResolvedResponse:
        """Clears the order's attention flag, with a note of what was done about it."""
        request = operator_pb2.MarkResolvedRequest(
            request_id=request_id or str(uuid.uuid4()), order_id=order_id, note=note
        )
        return await self._unary(self._stub.MarkResolved, request)


def _duration(span: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(span)
    return duration
