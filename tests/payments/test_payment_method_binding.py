"""A payment method is charged only for the order it was given for."""

from __future__ import annotations

import uuid

import asyncpg
import grpc

from clients.errors import Reason
from clients.proto.common.v1 import money_pb2
from clients.proto.payments.v1 import payments_pb2 as pb
from clients.proto.payments.v1.payments_pb2_grpc import PaymentServiceStub
from tests.support.orders import rpc_error

Stub = PaymentServiceStub


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex}"


async def new_method(
    payments: Stub, order_id: str = "", *, token: str = "tok_visa", request_id: str = ""
) -> str:
    request = pb.CreatePaymentMethodRequest(
        request_id=request_id or f"{order_id or 'no-order'}:{uuid.uuid4().hex}",
        customer_id="cust-1",
        payment_token=token,
        order_id=order_id,
    )
    return (await payments.CreatePaymentMethod(request)).payment_method.payment_method_id


def charge(order_id: str, method: str) -> pb.ChargeRequest:
    """The order workflow's charge: the order's own key, its total, its card."""
    return pb.ChargeRequest(
        idempotency_key=f"{order_id}:charge",
        order_id=order_id,
        amount=money_pb2.Money(currency_code="USD", amount_minor=700),
        payment_method_id=method,
    )


async def traces_of(pool: asyncpg.Pool, order_id: str) -> dict[str, int]:
    """What a charge for the order left behind: gateway calls, key records, payments, ledger."""
    key = f"{order_id}:charge"
    row = await pool.fetchrow(
        """SELECT
             (SELECT coalesce(sum(attempts), 0) FROM payments.gateway_attempts
               WHERE idempotency_key = $1) AS gateway_calls,
             (SELECT count(*) FROM payments.charge_keys WHERE idempotency_key = $1) AS keys,
             (SELECT count(*) FROM payments.payments WHERE order_id = $2) AS payments,
             (SELECT count(*) FROM payments.ledger JOIN payments.payments USING (payment_id)
               WHERE order_id = $2) AS ledger""",
        key,
        order_id,
    )
    assert row is not None
    return dict(row)


NOTHING = {"gateway_calls": 0, "keys": 0, "payments": 0, "ledger": 0}
ONE_CHARGE = {"gateway_calls": 1, "keys": 1, "payments": 1, "ledger": 1}


async def test_a_method_is_charged_for_its_own_order(payments: Stub) -> None:
    order = new_order_id()
    method = await new_method(payments, order)
    payment = (await payments.Charge(charge(order, method))).payment
    assert payment.state == pb.PAYMENT_STATE_CAPTURED
    assert payment.order_id == order


async def test_a_method_given_for_another_order_is_refused_before_the_gateway(
    payments: Stub, payments_pool: asyncpg.Pool
) -> None:
    mine, other = new_order_id(), new_order_id()
    # tok_visa: had the gateway been asked, it would have approved.
    method = await new_method(payments, mine)

    async def charge_for_the_other_order() -> None:
        code, error = await rpc_error(payments.Charge(charge(other, method)))
        assert (code, error.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            Reason.PAYMENT_METHOD_MISMATCH,
        )
        assert error.metadata["payment_method_id"] == method
        assert await traces_of(payments_pool, other) == NOTHING

    # Before its own order's charge, and after it.
    await charge_for_the_other_order()
    first = (await payments.Charge(charge(mine, method))).payment
    await charge_for_the_other_order()

    # The refusals left the card's own order alone: its charge repeats as it was.
    assert (await payments.Charge(charge(mine, method))).payment == first
    assert await traces_of(payments_pool, mine) == ONE_CHARGE


async def test_a_method_given_without_an_order_is_bound_by_its_first_charge(
    payments: Stub, payments_pool: asyncpg.Pool
) -> None:
    first_order, other = new_order_id(), new_order_id()
    method = await new_method(payments)
    await payments.Charge(charge(first_order, method))
    code, error = await rpc_error(payments.Charge(charge(other, method)))
    assert (code, error.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        Reason.PAYMENT_METHOD_MISMATCH,
    )
    assert await traces_of(payments_pool, other) == NOTHING


async def test_a_request_id_cannot_give_its_method_to_another_order(payments: Stub) -> None:
    order = new_order_id()
    request_id = f"{order}:{uuid.uuid4().hex}"
    method = await new_method(payments, order, request_id=request_id)
    assert await new_method(payments, order, request_id=request_id) == method
    code, error = await rpc_error(new_method(payments, new_order_id(), request_id=request_id))
    assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.REQUEST_ID_REUSED)
    assert error.metadata["payment_method_id"] == method
