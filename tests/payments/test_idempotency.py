"""The idempotency rules of PaymentService.Charge and Refund, as payments.proto states them."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import grpc
import pytest

from clients.errors import Reason
from clients.proto.common.v1 import money_pb2
from clients.proto.payments.v1 import payments_pb2 as pb
from clients.proto.payments.v1.payments_pb2_grpc import PaymentServiceStub
from tests.support.orders import rpc_error

Stub = PaymentServiceStub


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"


def charge_request(
    key: str,
    *,
    order_id: str = "ord_1",
    amount_minor: int = 1000,
    currency_code: str = "USD",
    token: str = "tok_visa",
) -> pb.ChargeRequest:
    return pb.ChargeRequest(
        idempotency_key=key,
        order_id=order_id,
        amount=money_pb2.Money(currency_code=currency_code, amount_minor=amount_minor),
        payment_token=token,
    )


def refund_by_key(key: str) -> pb.RefundRequest:
    return pb.RefundRequest(idempotency_key=key)


async def gateway_attempts(pool: asyncpg.Pool, key: str) -> int:
    """How many times a charge under `key` reached the card gateway."""
    attempts = await pool.fetchval(
        "SELECT attempts FROM payments.gateway_attempts WHERE idempotency_key = $1", key
    )
    return attempts or 0


async def money_moved(pool: asyncpg.Pool, order_id: str) -> list[tuple[str, int]]:
    """The ledger entries of an order's payments, oldest first."""
    rows = await pool.fetch(
        """SELECT l.kind, l.amount_minor FROM payments.ledger l
             JOIN payments.payments p USING (payment_id)
            WHERE p.order_id = $1 ORDER BY l.entry_id""",
        order_id,
    )
    return [(r["kind"], r["amount_minor"]) for r in rows]


async def listed(payments: Stub, order_id: str) -> list[pb.Payment]:
    response = await payments.ListPayments(pb.ListPaymentsRequest(order_id=order_id))
    return list(response.payments)


def new_order() -> str:
    return f"ord_{uuid.uuid4().hex[:12]}"


# The first outcome for a key is final and replayed.


async def test_a_captured_key_replays_its_payment(payments: Stub, payments_pool) -> None:
    key, order = new_key(), new_order()
    first = (await payments.Charge(charge_request(key, order_id=order))).payment
    again = (await payments.Charge(charge_request(key, order_id=order))).payment
    assert first == again
    assert first.state == pb.PAYMENT_STATE_CAPTURED
    assert await gateway_attempts(payments_pool, key) == 1
    assert await money_moved(payments_pool, order) == [("CHARGE", 1000)]


async def test_a_declined_key_stays_declined(payments: Stub, payments_pool) -> None:
    key, order = new_key(), new_order()
    for _ in range(2):
        code, error = await rpc_error(
            payments.Charge(charge_request(key, order_id=order, token="tok_chargeDeclined"))
        )
        assert (code, error.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            Reason.PAYMENT_DECLINED,
        )
    # The repeat was answered from the record, not by asking the gateway again.
    assert await gateway_attempts(payments_pool, key) == 1
    assert await listed(payments, order) == []


async def test_a_declined_key_does_not_capture_another_amount(
    payments: Stub, payments_pool
) -> None:
    key, order = new_key(), new_order()
    await rpc_error(
        payments.Charge(charge_request(key, order_id=order, token="tok_chargeDeclined"))
    )
    code, error = await rpc_error(
        payments.Charge(charge_request(key, order_id=order, amount_minor=999))
    )
    assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.IDEMPOTENCY_KEY_REUSED)
    assert await listed(payments, order) == []
    assert await money_moved(payments_pool, order) == []


# Any parameter mismatch under a used key is refused.

MISMATCHES = {
    "amount.amount_minor": {"amount_minor": 1001},
    "amount.currency_code": {"currency_code": "EUR"},
    "order_id": {"order_id": "ord_other"},
    "payment_token": {"token": "tok_slow"},
}


@pytest.mark.parametrize("field", MISMATCHES)
async def test_another_parameter_under_a_captured_key_is_refused(
    payments: Stub, payments_pool, field: str
) -> None:
    key, order = new_key(), new_order()
    first = (await payments.Charge(charge_request(key, order_id=order))).payment
    changed = {"order_id": order, **MISMATCHES[field]}
    code, error = await rpc_error(payments.Charge(charge_request(key, **changed)))  # type: ignore[arg-type]
    assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.IDEMPOTENCY_KEY_REUSED)
    assert error.metadata["mismatched_fields"] == field
    assert error.metadata["payment_id"] == first.payment_id
    assert await gateway_attempts(payments_pool, key) == 1
    assert await money_moved(payments_pool, order) == [("CHARGE", 1000)]


@pytest.mark.parametrize("field", MISMATCHES)
async def test_another_parameter_under_a_declined_key_is_refused(
    payments: Stub, field: str
) -> None:
    key, order = new_key(), new_order()
    declined = {"order_id": order, "token": "tok_chargeDeclined"}
    await rpc_error(payments.Charge(charge_request(key, **declined)))  # type: ignore[arg-type]
    changed = {**declined, **MISMATCHES[field]}
    code, error = await rpc_error(payments.Charge(charge_request(key, **changed)))  # type: ignore[arg-type]
    assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.IDEMPOTENCY_KEY_REUSED)
    assert error.metadata["mismatched_fields"] == field


async def test_the_card_token_is_never_stored(payments: Stub, payments_pool) -> None:
    # Any token but the test ones is declined; this one is unique to the test.
    secret = f"tok_{uuid.uuid4().hex}"
    key = new_key()
    await rpc_error(payments.Charge(charge_request(key, token=secret)))
    _, error = await rpc_error(payments.Charge(charge_request(key, token="tok_visa")))
    assert error.reason == Reason.IDEMPOTENCY_KEY_REUSED  # the card was told apart...
    tables = await payments_pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'payments'"
    )
    for table in tables:
        rows = await payments_pool.fetch(f"SELECT t::text AS row FROM payments.{table[0]} t")
        assert not [r["row"] for r in rows if secret in r["row"]]  # ...without keeping it
    assert secret not in str(error.metadata) and secret not in error.message


# A key whose payment was refunded never answers OK again.


async def test_a_charge_after_a_refund_is_refused(payments: Stub, payments_pool) -> None:
    key, order = new_key(), new_order()
    payment = (await payments.Charge(charge_request(key, order_id=order))).payment
    await payments.Refund(pb.RefundRequest(payment_id=payment.payment_id))
    code, error = await rpc_error(payments.Charge(charge_request(key, order_id=order)))
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.CHARGE_VOIDED)
    assert error.metadata["payment_id"] == payment.payment_id
    assert await money_moved(payments_pool, order) == [("CHARGE", 1000), ("REFUND", 1000)]
    [kept] = await listed(payments, order)
    assert kept.state == pb.PAYMENT_STATE_REFUNDED


async def test_a_charge_after_a_refund_by_key_is_refused(payments: Stub, payments_pool) -> None:
    key, order = new_key(), new_order()
    await payments.Charge(charge_request(key, order_id=order))
    refunded = (await payments.Refund(refund_by_key(key))).payment
    assert refunded.state == pb.PAYMENT_STATE_REFUNDED
    code, error = await rpc_error(payments.Charge(charge_request(key, order_id=order)))
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.CHARGE_VOIDED)
    # Refunding again is harmless: the same refunded payment, no second refund.
    assert (await payments.Refund(refund_by_key(key))).payment == refunded
    assert await money_moved(payments_pool, order) == [("CHARGE", 1000), ("REFUND", 1000)]


# Refund by key before any charge voids the key, harmlessly and idempotently.


async def test_a_refund_by_key_before_the_charge_voids_the_key(
    payments: Stub, payments_pool
) -> None:
    key, order = new_key(), new_order()
    for _ in range(2):
        response = await payments.Refund(refund_by_key(key))
        assert not response.HasField("payment")
        assert response.key_outcome == pb.KEY_OUTCOME_VOIDED
    code, error = await rpc_error(payments.Charge(charge_request(key, order_id=order)))
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.CHARGE_VOIDED)
    assert await gateway_attempts(payments_pool, key) == 0
    assert await listed(payments, order) == []


async def test_a_refund_by_key_leaves_a_declined_key_declined(payments: Stub) -> None:
    key, order = new_key(), new_order()
    declined = charge_request(key, order_id=order, token="tok_chargeDeclined")
    await rpc_error(payments.Charge(declined))
    for _ in range(2):
        response = await payments.Refund(refund_by_key(key))
        assert not response.HasField("payment")
        assert response.key_outcome == pb.KEY_OUTCOME_DECLINED
    # The first outcome is still the one replayed.
    code, error = await rpc_error(payments.Charge(declined))
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.PAYMENT_DECLINED)


async def test_a_refund_by_key_reports_a_captured_key(payments: Stub) -> None:
    key = new_key()
    await payments.Charge(charge_request(key))
    response = await payments.Refund(refund_by_key(key))
    assert response.key_outcome == pb.KEY_OUTCOME_CAPTURED
    assert response.payment.state == pb.PAYMENT_STATE_REFUNDED


# Transient gateway failures record no final outcome.


async def test_a_transient_failure_can_still_succeed(payments: Stub, payments_pool) -> None:
    key, order = new_key(), new_order()
    request = charge_request(key, order_id=order, token="tok_transient")
    for _ in range(2):
        code, error = await rpc_error(payments.Charge(request))
        assert (code, error.reason) == (grpc.StatusCode.UNAVAILABLE, Reason.GATEWAY_UNAVAILABLE)
    payment = (await payments.Charge(request)).payment
    assert payment.state == pb.PAYMENT_STATE_CAPTURED
    assert (await payments.Charge(request)).payment == payment
    assert await money_moved(payments_pool, order) == [("CHARGE", 1000)]


async def test_a_transient_failure_binds_the_parameters(payments: Stub) -> None:
    # The gateway may have seen the first attempt: a retry must be the same charge.
    key, order = new_key(), new_order()
    await rpc_error(payments.Charge(charge_request(key, order_id=order, token="tok_transient")))
    code, error = await rpc_error(
        payments.Charge(charge_request(key, order_id=order, amount_minor=5, token="tok_transient"))
    )
    assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.IDEMPOTENCY_KEY_REUSED)


async def test_a_refund_by_key_after_a_transient_failure_voids_the_key(
    payments: Stub, payments_pool
) -> None:
    key, order = new_key(), new_order()
    request = charge_request(key, order_id=order, token="tok_transient")
    await rpc_error(payments.Charge(request))
    response = await payments.Refund(refund_by_key(key))
    assert (response.HasField("payment"), response.key_outcome) == (False, pb.KEY_OUTCOME_VOIDED)
    for _ in range(3):  # past the gateway's two failures: still refused
        code, error = await rpc_error(payments.Charge(request))
        assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.CHARGE_VOIDED)
    assert await money_moved(payments_pool, order) == []


# Concurrent calls under one key.


@pytest.mark.parametrize("token", ["tok_visa", "tok_slow", "tok_chargeDeclined"])
async def test_concurrent_charges_with_one_key_reach_the_gateway_once(
    payments: Stub, payments_pool, token: str
) -> None:
    key, order = new_key(), new_order()
    request = charge_request(key, order_id=order, token=token)
    results = await asyncio.gather(
        *(payments.Charge(request) for _ in range(8)), return_exceptions=True
    )
    assert await gateway_attempts(payments_pool, key) == 1
    if token == "tok_chargeDeclined":
        assert all(isinstance(r, grpc.aio.AioRpcError) for r in results)
        assert {r.code() for r in results} == {grpc.StatusCode.FAILED_PRECONDITION}  # type: ignore[union-attr]
        assert await money_moved(payments_pool, order) == []
    else:
        assert all(isinstance(r, pb.ChargeResponse) for r in results)
        assert len({r.payment.payment_id for r in results}) == 1  # type: ignore[union-attr]
        assert await money_moved(payments_pool, order) == [("CHARGE", 1000)]


async def test_a_charge_racing_a_refund_by_key_keeps_no_money(
    payments: Stub, payments_pool
) -> None:
    key, order = new_key(), new_order()
    request = charge_request(key, order_id=order, token="tok_slow")
    charged, refunded = await asyncio.gather(
        payments.Charge(request), payments.Refund(refund_by_key(key)), return_exceptions=True
    )
    if isinstance(charged, pb.ChargeResponse):  # the charge went first, the refund undid it
        assert isinstance(refunded, pb.RefundResponse)
        assert refunded.payment.payment_id == charged.payment.payment_id
        assert await money_moved(payments_pool, order) == [("CHARGE", 1000), ("REFUND", 1000)]
    else:  # the refund went first and voided the key
        assert isinstance(charged, grpc.aio.AioRpcError)
        assert charged.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert await money_moved(payments_pool, order) == []
    code, error = await rpc_error(payments.Charge(request))
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.CHARGE_VOIDED)
