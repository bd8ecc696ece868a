"""The operators' API (operator.v1.OperatorService) against a stack of its own.

Its own database, so that searches see only these orders and the audit
table only these actions; the carrier takes a few seconds to book, so that
an order waits in SHIPPING, charged, long enough to be cancelled; and no
circuit breaker, so that a refund against a payment service that is down
fails its attempts at once and the order is flagged within seconds. The
operator's credentials are the stack's default channel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration
from temporalio.testing import WorkflowEnvironment

from clients.errors import Reason
from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.operator.v1 import operator_pb2 as op
from clients.proto.operator.v1 import operator_pb2_grpc
from clients.proto.orders.v1 import orders_pb2 as pb
from clients.proto.payments.v1 import payments_pb2
from clients.proto.shipping.v1 import shipping_pb2
from server.core.auth import Role
from tests.support.database import scratch_database
from tests.support.orders import order_request, place, rpc_error, stock_sku, wait_for
from tests.support.polling import eventually
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

BOOKING_SECONDS = 6
OPERATOR = "dev-operator"  # the subject of the stack's operator token


@pytest_asyncio.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with scratch_database(tmp_path_factory.mktemp("operator-db")) as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def stack(
    temporal: WorkflowEnvironment, database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path_factory.mktemp("operator"),
        database,
        temporal.client.service_client.config.target_host,
        SHIPPING_BOOKING_SECONDS=str(BOOKING_SECONDS),
        CIRCUIT_BREAKER_ENABLED="false",
        ORDER_WORKFLOW_WAIT_SECONDS="4",
    ) as stack:
        yield stack


@pytest_asyncio.fixture(scope="module")
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    yield pool
    await pool.close()


def ops(stack: Stack) -> operator_pb2_grpc.OperatorServiceStub:
    return operator_pb2_grpc.OperatorServiceStub(stack.channel("orders"))


def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


def ids(orders: object) -> list[str]:
    return [order.order_id for order in orders]  # type: ignore[attr-defined]


async def search(stack: Stack, **filters: object) -> list[str]:
    return ids((await ops(stack).SearchOrders(op.SearchOrdersRequest(**filters))).orders)


async def audit_rows(pool: asyncpg.Pool, order_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT operator, request_id, kind, note, result FROM orders.operator_actions
            WHERE order_id = $1 ORDER BY created_at""",
        order_id,
    )


def duration(seconds: float) -> Duration:
    span = Duration()
    span.FromTimedelta(timedelta(seconds=seconds))
    return span


# ------------------------------------------------------------------- search


async def test_search_by_each_filter_newest_first_and_by_pages(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=20)
    who = customer()
    first = await place(stack, order_request(sku, customer_id=who))
    declined = await place(stack, order_request(sku, customer_id=who, token="tok_chargeDeclined"))
    third = await place(stack, order_request(sku, customer_id=who))
    await asyncio.sleep(0.05)
    fourth = await place(stack, order_request(sku, customer_id=who))
    await asyncio.gather(
        *(wait_for(stack, o.order_id, (pb.ORDER_STATE_SHIPPED,)) for o in (first, third, fourth)),
        wait_for(stack, declined.order_id, (pb.ORDER_STATE_FAILED,)),
    )
    everyone = [fourth.order_id, third.order_id, declined.order_id, first.order_id]

    assert await search(stack, customer_id=who) == everyone
    assert await search(stack, customer_id=who, states=[pb.ORDER_STATE_SHIPPED]) == [
        fourth.order_id,
        third.order_id,
        first.order_id,
    ]
    assert await search(stack, customer_id=who, failure_reason="PAYMENT_DECLINED") == [
        declined.order_id
    ]
    assert declined.order_id in await search(stack, failure_reason="PAYMENT_DECLINED")
    assert await search(stack, customer_id=who, created_after=fourth.create_time) == [
        fourth.order_id
    ]
    assert await search(stack, customer_id=who, created_before=fourth.create_time) == everyone[1:]
    assert await search(stack, customer_id=who, attention_required_only=True) == []
    # Age in state: none has been SHIPPED an hour; all have for a moment.
    assert await search(stack, customer_id=who, min_age_in_state=duration(3600)) == []
    await asyncio.sleep(1.1)
    assert await search(stack, customer_id=who, min_age_in_state=duration(1)) == everyone

    # Pages of two, bound to their filters.
    page = await ops(stack).SearchOrders(op.SearchOrdersRequest(customer_id=who, page_size=2))
    assert ids(page.orders) == everyone[:2] and page.next_page_token
    rest = await ops(stack).SearchOrders(
        op.SearchOrdersRequest(customer_id=who, page_size=2, page_token=page.next_page_token)
    )
    assert ids(rest.orders) == everyone[2:] and rest.next_page_token == ""
    code, error = await rpc_error(
        ops(stack).SearchOrders(
            op.SearchOrdersRequest(
                customer_id=who, states=[pb.ORDER_STATE_SHIPPED], page_token=page.next_page_token
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["page_token"]


async def test_bad_filters_are_refused_with_every_field(stack: Stack) -> None:
    later, earlier = pb.Order().create_time, pb.Order().create_time
    later.FromSeconds(2_000_000_000)
    earlier.FromSeconds(1_000_000_000)
    code, error = await rpc_error(
        ops(stack).SearchOrders(
            op.SearchOrdersRequest(
                states=[99],  # type: ignore[list-item]
                page_size=-1,
                min_age_in_state=duration(-5),
                created_after=later,
                created_before=earlier,
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in error.violations} == {
        "states",
        "page_size",
        "min_age_in_state",
        "created_before",
    }


# ------------------------------------------------------------------- detail


async def test_detail_of_a_shipped_order_then_delivered(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=5)
    order = await place(stack, order_request(sku, quantity=2, customer_id=customer()))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))

    detail = await ops(stack).GetOrderDetail(op.GetOrderDetailRequest(order_id=order.order_id))
    assert detail.order.state == pb.ORDER_STATE_SHIPPED
    assert detail.workflow_status == op.WORKFLOW_STATUS_RUNNING
    assert detail.progress.workflow_running and not detail.progress.failing_compensations
    assert [p.state for p in detail.payments] == [payments_pb2.PAYMENT_STATE_CAPTURED]
    assert detail.payments[0].amount_minor == order.total.amount_minor
    assert detail.reservation.state == inventory_pb2.RESERVATION_STATE_COMMITTED
    assert [(line.sku, line.quantity) for line in detail.reservation.lines] == [(sku, 2)]
    assert detail.shipment.state == shipping_pb2.SHIPMENT_STATE_BOOKED
    assert detail.shipment.tracking_number == detail.order.tracking_number
    assert not detail.holdings_unknown and not detail.actions
    states = [change.state for change in detail.state_changes]
    assert states[0] == pb.ORDER_STATE_PENDING and states[-1] == pb.ORDER_STATE_SHIPPED
    assert pb.ORDER_STATE_PAID in states

    await stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id))
    ended = await eventually(
        lambda: ops(stack).GetOrderDetail(op.GetOrderDetailRequest(order_id=order.order_id)),
        lambda d: d.workflow_status == op.WORKFLOW_STATUS_COMPLETED,
    )
    assert ended.order.state == pb.ORDER_STATE_DELIVERED
    assert ended.HasField("workflow_close_time") and not ended.progress.workflow_running


async def test_an_unknown_order_is_not_found_everywhere(stack: Stack) -> None:
    missing = "ord_" + uuid.uuid4().hex
    for call in (
        ops(stack).GetOrderDetail(op.GetOrderDetailRequest(order_id=missing)),
        ops(stack).RetryStep(op.RetryStepRequest(request_id="r", order_id=missing, note="n")),
        ops(stack).CancelAndCompensate(
            op.CancelAndCompensateRequest(request_id="c", order_id=missing, note="n")
        ),
        ops(stack).MarkResolved(op.MarkResolvedRequest(request_id="m", order_id=missing, note="n")),
    ):
        code, error = await rpc_error(call)
        assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, Reason.ORDER_NOT_FOUND)


# ------------------------------------------------------------------ actions


async def test_a_refund_that_keeps_failing_is_found_retried_and_resolved(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    """Cancelled while the payment service is down: its refund keeps failing."""
    sku = await stock_sku(stack, quantity=5)
    who = customer()
    order = await place(stack, order_request(sku, customer_id=who))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPING,))
    payments = stack.process("payments")
    payments.kill()
    try:
        cancel = op.CancelAndCompensateRequest(
            request_id=str(uuid.uuid4()), order_id=order.order_id, note="customer called: cancel"
        )
        cancelled = await ops(stack).CancelAndCompensate(cancel)
        assert cancelled.order.state in (pb.ORDER_STATE_CANCELLING, pb.ORDER_STATE_CANCELLED)
        assert cancelled.action.kind == op.OPERATOR_ACTION_KIND_CANCEL_AND_COMPENSATE
        assert cancelled.action.operator == OPERATOR and "CANCELLING" in cancelled.action.result

        # A burst of refund attempts fails, and the order is flagged.
        flagged = await eventually(
            lambda: search(stack, customer_id=who, attention_required_only=True),
            lambda found: found == [order.order_id],
            within=90,
            every=0.5,
        )
        assert order.order_id in await search(stack, attention_required_only=True)
        assert flagged

        detail = await ops(stack).GetOrderDetail(op.GetOrderDetailRequest(order_id=order.order_id))
        assert detail.order.attention_required
        assert detail.order.state == pb.ORDER_STATE_CANCELLING
        assert detail.workflow_status == op.WORKFLOW_STATUS_RUNNING
        progress = await eventually(
            lambda: ops(stack).GetOrderDetail(op.GetOrderDetailRequest(order_id=order.order_id)),
            lambda d: not d.progress.busy,
        )
        assert "refund_payment" in progress.progress.failing_compensations
        assert "refund_payment" in progress.progress.pending_compensations
        assert any(line.startswith("payments: unknown") for line in progress.holdings_unknown)
        assert progress.shipment.state == shipping_pb2.SHIPMENT_STATE_CANCELLED
        assert [a.action_id for a in progress.actions] == [cancelled.action.action_id]

        # Retry now: sent and recorded; repeated, the same action, once.
        retry = op.RetryStepRequest(
            request_id=str(uuid.uuid4()), order_id=order.order_id, note="payments is back soon"
        )
        retried = await ops(stack).RetryStep(retry)
        again = await ops(stack).RetryStep(retry)
        assert again.action == retried.action
        assert retried.action.kind == op.OPERATOR_ACTION_KIND_RETRY_STEP
        # Whether this release's workflow handles retry_now or not, the record says
        # what it was waiting to retry.
        assert "retry" in retried.action.result
        assert "failing compensations: refund_payment" in retried.action.result
        code, error = await rpc_error(
            ops(stack).RetryStep(
                op.RetryStepRequest(
                    request_id=retry.request_id, order_id=order.order_id, note="another note"
                )
            )
        )
        assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.REQUEST_ID_REUSED)

        # Resolved: no longer flagged or found, though its workflow still fails to refund.
        resolve = op.MarkResolvedRequest(
            request_id=str(uuid.uuid4()),
            order_id=order.order_id,
            note="refunded by hand at the gateway",
        )
        resolved = await ops(stack).MarkResolved(resolve)
        assert resolved.action.result == "cleared attention_required"
        assert not resolved.order.attention_required
        assert (await ops(stack).MarkResolved(resolve)).action == resolved.action
        assert await search(stack, customer_id=who, attention_required_only=True) == []
        read = await stack.orders.GetOrder(pb.GetOrderRequest(order_id=order.order_id))
        assert not read.order.attention_required
    finally:
        payments.start()
        await stack.wait_serving("payments")

    rows = await audit_rows(pool, order.order_id)
    assert [(r["kind"], r["operator"]) for r in rows] == [
        ("CANCEL_AND_COMPENSATE", OPERATOR),
        ("RETRY_STEP", OPERATOR),
        ("MARK_RESOLVED", OPERATOR),
    ]
    assert [r["request_id"] for r in rows] == [
        cancel.request_id,
        retry.request_id,
        resolve.request_id,
    ]
    assert rows[2]["note"] == "refunded by hand at the gateway"

    # Once payments is back the refund goes through and the order ends cancelled.
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_CANCELLED,), within=120)
    # The worker's channel to payments may be back before the front door's:
    # until the front door reconnects, its detail says the payments are unknown.
    final = await eventually(
        lambda: ops(stack).GetOrderDetail(op.GetOrderDetailRequest(order_id=order.order_id)),
        lambda d: not any(line.startswith("payments:") for line in d.holdings_unknown),
        within=30,
        every=0.5,
    )
    assert [p.state for p in final.payments] == [payments_pb2.PAYMENT_STATE_REFUNDED]
    assert not final.order.attention_required
    assert [a.kind for a in final.actions] == [
        op.OPERATOR_ACTION_KIND_CANCEL_AND_COMPENSATE,
        op.OPERATOR_ACTION_KIND_RETRY_STEP,
        op.OPERATOR_ACTION_KIND_MARK_RESOLVED,
    ]


async def test_cancel_and_compensate_is_idempotent_and_refusals_are_not_recorded(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    sku = await stock_sku(stack, quantity=5)
    order = await place(stack, order_request(sku, customer_id=customer()))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPING,))
    request = op.CancelAndCompensateRequest(
        request_id=str(uuid.uuid4()), order_id=order.order_id, note="fraud suspected"
    )
    first = await ops(stack).CancelAndCompensate(request)
    second = await ops(stack).CancelAndCompensate(request)
    assert second.action == first.action
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_CANCELLED,))
    rows = await audit_rows(pool, order.order_id)
    assert [(r["kind"], r["note"]) for r in rows] == [("CANCEL_AND_COMPENSATE", "fraud suspected")]

    # The order ended: retrying is refused, and nothing is recorded.
    code, error = await rpc_error(
        ops(stack).RetryStep(
            op.RetryStepRequest(request_id=str(uuid.uuid4()), order_id=order.order_id, note="n")
        )
    )
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.ORDER_FINISHED)

    shipped = await place(stack, order_request(sku, customer_id=customer()))
    await wait_for(stack, shipped.order_id, (pb.ORDER_STATE_SHIPPED,))
    code, error = await rpc_error(
        ops(stack).CancelAndCompensate(
            op.CancelAndCompensateRequest(
                request_id=str(uuid.uuid4()), order_id=shipped.order_id, note="too late"
            )
        )
    )
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.ALREADY_SHIPPED)
    assert len(await audit_rows(pool, order.order_id)) == 1
    assert await audit_rows(pool, shipped.order_id) == []


async def test_resolving_an_order_that_is_not_flagged_records_the_note(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    sku = await stock_sku(stack, quantity=5)
    order = await place(stack, order_request(sku, customer_id=customer()))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    resolved = await ops(stack).MarkResolved(
        op.MarkResolvedRequest(
            request_id=str(uuid.uuid4()), order_id=order.order_id, note="checked: all fine"
        )
    )
    assert resolved.action.result == "the order was not flagged"
    assert resolved.order.state == pb.ORDER_STATE_SHIPPED
    assert len(await audit_rows(pool, order.order_id)) == 1
    code, error = await rpc_error(
        ops(stack).MarkResolved(
            op.MarkResolvedRequest(request_id="r-1", order_id=order.order_id, note="  ")
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["note"]


# -------------------------------------------------------------------- access


async def test_a_customer_service_may_call_none_of_it(stack: Stack) -> None:
    who = customer()
    shop = operator_pb2_grpc.OperatorServiceStub(
        stack.channel("orders", stack.credentials(Role.CUSTOMER_SERVICE, who))
    )
    order_id = "ord_" + uuid.uuid4().hex
    calls = {
        "SearchOrders": shop.SearchOrders(op.SearchOrdersRequest(customer_id=who)),
        "GetOrderDetail": shop.GetOrderDetail(op.GetOrderDetailRequest(order_id=order_id)),
        "RetryStep": shop.RetryStep(
            op.RetryStepRequest(request_id="r", order_id=order_id, note="n")
        ),
        "CancelAndCompensate": shop.CancelAndCompensate(
            op.CancelAndCompensateRequest(request_id="c", order_id=order_id, note="n")
        ),
        "MarkResolved": shop.MarkResolved(
            op.MarkResolvedRequest(request_id="m", order_id=order_id, note="n")
        ),
    }
    assert set(calls) == {m.name for m in op.DESCRIPTOR.services_by_name["OperatorService"].methods}
    for name, call in calls.items():
        code, error = await rpc_error(call)
        assert (code, error.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            Reason.PERMISSION_DENIED,
        ), name
