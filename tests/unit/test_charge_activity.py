"""charge_payment names the card by reference; orders accepted before that, by their token."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from clients.proto.payments.v1 import payments_pb2
from worker.activities import OrderActivities
from worker.model import ChargeInput


class RecordingPayments:
    """Stands in for the payment service's stub; keeps what it was asked."""

    def __init__(self) -> None:
        self.requests: list[payments_pb2.ChargeRequest] = []

    async def Charge(
        self, request: payments_pb2.ChargeRequest, **call_options: Any
    ) -> payments_pb2.ChargeResponse:
        self.requests.append(request)
        return payments_pb2.ChargeResponse(payment=payments_pb2.Payment(payment_id="pay_1"))


@pytest.mark.parametrize(
    ("charge", "method", "token"),
    [
        (ChargeInput("ord_1", "USD", 5, payment_method_id="pm_1"), "pm_1", ""),
        # A workflow started before payment methods, still running, charges its token.
        (ChargeInput("ord_1", "USD", 5, payment_token="tok_visa"), "", "tok_visa"),
    ],
)
async def test_the_charge_names_the_card_once(charge: ChargeInput, method: str, token: str) -> None:
    payments = RecordingPayments()
    fake: Any = None
    activities = OrderActivities(payments=payments, inventory=fake, shipping=fake, orders=fake)  # type: ignore[arg-type]
    result = await ActivityEnvironment().run(activities.charge_payment, charge)
    assert result.payment_id == "pay_1"
    [request] = payments.requests
    assert (request.payment_method_id, request.payment_token) == (method, token)
    assert request.idempotency_key == "ord_1:charge"
