"""A typed async client of payments.v1.PaymentService: the ledger of charges and refunds."""

from __future__ import annotations

import functools
from typing import cast

from clients.proto.payments.v1 import payments_pb2, payments_pb2_grpc
from clients.service import ServiceClient


class PaymentsClient(ServiceClient):
    """Reads the ledger (operators); charges and refunds are the order workflow's."""

    @functools.cached_property
    def _stub(self) -> payments_pb2_grpc.PaymentServiceAsyncStub:
        # The generated stubs type an aio channel's stub as the Async one.
        return cast(
            "payments_pb2_grpc.PaymentServiceAsyncStub",
            payments_pb2_grpc.PaymentServiceStub(self.channel),
        )

    async def list_payments(self, order_id: str) -> list[payments_pb2.Payment]:
        """The order's payments, oldest first (declined attempts are not payments)."""
        request = payments_pb2.ListPaymentsRequest(order_id=order_id)
        return list((await self._unary(self._stub.ListPayments, request)).payments)

    async def get_payment(self, payment_id: str) -> payments_pb2.Payment:
        """One payment; PAYMENT_NOT_FOUND when there is none."""
        request = payments_pb2.GetPaymentRequest(payment_id=payment_id)
        return (await self._unary(self._stub.GetPayment, request)).payment
