"""Payment methods: the card token kept encrypted, charged by reference."""

from __future__ import annotations

import json
import uuid

import asyncpg
import grpc

from clients.errors import Reason
from clients.proto.common.v1 import money_pb2
from clients.proto.payments.v1 import payments_pb2 as pb
from clients.proto.payments.v1.payments_pb2_grpc import PaymentServiceStub
from server.core.keyring import generate_keyring, parse_keyring
from server.payments.payment_methods import PaymentMethodStore
from tests.support.orders import rpc_error

Stub = PaymentServiceStub


def create(
    token: str = "tok_visa", *, request_id: str = "", customer_id: str = "cust-1"
) -> pb.CreatePaymentMethodRequest:
    return pb.CreatePaymentMethodRequest(
        request_id=request_id or f"req-{uuid.uuid4().hex}",
        customer_id=customer_id,
        payment_token=token,
    )


def charge(key: str, *, method: str = "", token: str = "") -> pb.ChargeRequest:
    return pb.ChargeRequest(
        idempotency_key=key,
        order_id="ord_pm",
        amount=money_pb2.Money(currency_code="USD", amount_minor=700),
        payment_method_id=method,
        payment_token=token,
    )


async def new_method(payments: Stub, token: str = "tok_visa") -> pb.PaymentMethod:
    return (await payments.CreatePaymentMethod(create(token))).payment_method


async def test_a_payment_method_is_charged_by_reference(payments: Stub) -> None:
    method = await new_method(payments)
    assert method.payment_method_id.startswith("pm_")
    assert method.card_last4 == "4242"
    payment = (
        await payments.Charge(charge(f"key-{uuid.uuid4()}", method=method.payment_method_id))
    ).payment
    assert payment.state == pb.PAYMENT_STATE_CAPTURED
    assert payment.card_last4 == "4242"


async def test_a_declined_card_is_declined_by_reference_too(payments: Stub) -> None:
    method = await new_method(payments, "tok_chargeDeclined")
    code, error = await rpc_error(
        payments.Charge(charge(f"key-{uuid.uuid4()}", method=method.payment_method_id))
    )
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.PAYMENT_DECLINED)


async def test_the_card_not_its_reference_is_the_charge_parameter(payments: Stub) -> None:
    key = f"key-{uuid.uuid4()}"
    by_token = (await payments.Charge(charge(key, token="tok_visa"))).payment
    visa = await new_method(payments)
    again = (await payments.Charge(charge(key, method=visa.payment_method_id))).payment
    assert again == by_token
    other_card = await new_method(payments, "tok_slow")
    code, error = await rpc_error(payments.Charge(charge(key, method=other_card.payment_method_id)))
    assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.IDEMPOTENCY_KEY_REUSED)


async def test_creating_is_idempotent_per_request_id(payments: Stub) -> None:
    request = create()
    first = (await payments.CreatePaymentMethod(request)).payment_method
    assert (await payments.CreatePaymentMethod(request)).payment_method == first
    for other in (
        create("tok_slow", request_id=request.request_id),
        create(request_id=request.request_id, customer_id="cust-2"),
    ):
        code, error = await rpc_error(payments.CreatePaymentMethod(other))
        assert (code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, Reason.REQUEST_ID_REUSED)
        assert error.metadata["payment_method_id"] == first.payment_method_id


async def test_a_charge_names_its_card_exactly_once(payments: Stub) -> None:
    method = await new_method(payments)
    for request in (
        charge("key-both", method=method.payment_method_id, token="tok_visa"),
        charge("key-neither"),
    ):
        code, error = await rpc_error(payments.Charge(request))
        assert (code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, Reason.INVALID_ARGUMENT)


async def test_an_unknown_payment_method_is_an_invalid_argument(payments: Stub) -> None:
    code, error = await rpc_error(payments.Charge(charge(f"key-{uuid.uuid4()}", method="pm_nope")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["payment_method_id"]


async def test_the_token_is_not_stored_in_clear(
    payments: Stub, payments_pool: asyncpg.Pool
) -> None:
    token = f"tok_unknown_{uuid.uuid4().hex}"
    method = await new_method(payments, token)
    row = await payments_pool.fetchrow(
        "SELECT * FROM payments.payment_methods WHERE payment_method_id = $1",
        method.payment_method_id,
    )
    assert row is not None
    assert token.encode() not in repr(dict(row)).encode()
    assert token.encode() not in bytes(row["token_ciphertext"])


async def test_payment_methods_under_an_old_key_charge_after_rotation(
    payments_pool: asyncpg.Pool,
) -> None:
    before = generate_keyring("pm1")
    old_store = PaymentMethodStore(payments_pool, parse_keyring(before, source="test"))
    old = await old_store.create(f"req-{uuid.uuid4()}", "cust-1", "tok_visa", "ord_old")

    rotated = json.loads(before)
    rotated["keys"].update(json.loads(generate_keyring("pm2"))["keys"])
    rotated["current"] = "pm2"
    store = PaymentMethodStore(payments_pool, parse_keyring(json.dumps(rotated), source="test"))
    new = await store.create(f"req-{uuid.uuid4()}", "cust-1", "tok_slow", "ord_new")

    assert await store.token(old.payment_method_id, order_id="ord_old") == "tok_visa"
    assert await store.token(new.payment_method_id, order_id="ord_new") == "tok_slow"
    key_ids = await payments_pool.fetch(
        "SELECT payment_method_id, key_id FROM payments.payment_methods"
        " WHERE payment_method_id = ANY($1::text[])",
        [old.payment_method_id, new.payment_method_id],
    )
    assert {r["payment_method_id"]: r["key_id"] for r in key_ids} == {
        old.payment_method_id: "pm1",
        new.payment_method_id: "pm2",
    }
