"""payments.v1.PaymentService over gRPC."""

from __future__ import annotations

import grpc
import structlog

from clients.proto.payments.v1 import payments_pb2 as pb
from clients.proto.payments.v1 import payments_pb2_grpc
from server.core.convert import timestamp
from server.core.validation import Violations
from server.payments.charge_keys import KeyOutcome
from server.payments.payment_methods import PaymentMethod, PaymentMethodStore
from server.payments.repository import Payment, PaymentRepository

log = structlog.get_logger(__name__)

_STATES = {"CAPTURED": pb.PAYMENT_STATE_CAPTURED, "REFUNDED": pb.PAYMENT_STATE_REFUNDED}
_KEY_OUTCOMES = {
    KeyOutcome.CAPTURED: pb.KEY_OUTCOME_CAPTURED,
    KeyOutcome.DECLINED: pb.KEY_OUTCOME_DECLINED,
    KeyOutcome.VOIDED: pb.KEY_OUTCOME_VOIDED,
}


def _payment(payment: Payment) -> pb.Payment:
    return pb.Payment(
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        idempotency_key=payment.idempotency_key,
        currency_code=payment.currency_code,
        amount_minor=payment.amount_minor,
        refunded_amount_minor=payment.refunded_amount_minor,
        state=_STATES[payment.state],
        card_last4=payment.card_last4,
        create_time=timestamp(payment.created_at),
        refund_time=timestamp(payment.refunded_at),
    )


def _payment_method(method: PaymentMethod) -> pb.PaymentMethod:
    return pb.PaymentMethod(
        payment_method_id=method.payment_method_id,
        customer_id=method.customer_id,
        card_last4=method.card_last4,
        create_time=timestamp(method.created_at),
    )


class PaymentServicer(payments_pb2_grpc.PaymentServiceServicer):
    def __init__(self, repository: PaymentRepository, methods: PaymentMethodStore) -> None:
        self._repository = repository
        self._methods = methods

    async def Charge(
        self, request: pb.ChargeRequest, context: grpc.aio.ServicerContext
    ) -> pb.ChargeResponse:
        errors = (
            Violations()
            .require("idempotency_key", request.idempotency_key, max_length=200)
            .require("order_id", request.order_id)
        )
        if bool(request.payment_token) == bool(request.payment_method_id):
            errors.add("payment_token", "give exactly one of payment_token and payment_method_id")
        elif request.payment_token:
            errors.require("payment_token", request.payment_token, max_length=200)
        else:
            errors.require("payment_method_id", request.payment_method_id)
        if not request.HasField("amount"):
            errors.add("amount", "is required")
        else:
            errors.money("amount", request.amount, positive=True)
        errors.raise_if_any()
        # The card is the charge's parameter, however it was given. A payment
        # method is refused here for another order than its own, before the
        # gateway or the key's record is touched.
        token = request.payment_token or await self._methods.token(
            request.payment_method_id, order_id=request.order_id
        )
        payment = await self._repository.charge(
            request.idempotency_key,
            request.order_id,
            request.amount.currency_code,
            request.amount.amount_minor,
            token,
        )
        log.info(
            "payment captured",
            order_id=payment.order_id,
            payment_id=payment.payment_id,
            amount_minor=payment.amount_minor,
            currency=payment.currency_code,
        )
        return pb.ChargeResponse(payment=_payment(payment))

    async def CreatePaymentMethod(
        self, request: pb.CreatePaymentMethodRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreatePaymentMethodResponse:
        (
            Violations()
            .require("request_id", request.request_id, max_length=200)
            .require("customer_id", request.customer_id)
            .require("payment_token", request.payment_token, max_length=200)
            .optional("order_id", request.order_id, max_length=128)
            .raise_if_any()
        )
        method = await self._methods.create(
            request.request_id, request.customer_id, request.payment_token, request.order_id
        )
        log.info(
            "payment method stored",
            payment_method_id=method.payment_method_id,
            customer_id=method.customer_id,
            order_id=method.order_id,
        )
        return pb.CreatePaymentMethodResponse(payment_method=_payment_method(method))

    async def Refund(
        self, request: pb.RefundRequest, context: grpc.aio.ServicerContext
    ) -> pb.RefundResponse:
        errors = (
            Violations()
            .optional("payment_id", request.payment_id, max_length=128)
            .optional("idempotency_key", request.idempotency_key)
        )
        if bool(request.payment_id) == bool(request.idempotency_key):
            errors.add("payment_id", "give exactly one of payment_id and idempotency_key")
        errors.raise_if_any()
        if request.payment_id:
            payment = await self._repository.refund(request.payment_id)
            self._log_refund(payment)
            return pb.RefundResponse(payment=_payment(payment))
        found = await self._repository.refund_key(request.idempotency_key)
        if found.payment is not None:
            self._log_refund(found.payment)
        elif found.voided_now:
            log.info("charge voided before it was made", idempotency_key=request.idempotency_key)
        else:
            log.info(
                "nothing to refund under the key",
                idempotency_key=request.idempotency_key,
                key_outcome=found.outcome.value,
            )
        return pb.RefundResponse(
            payment=_payment(found.payment) if found.payment else None,
            key_outcome=_KEY_OUTCOMES[found.outcome],
        )

    @staticmethod
    def _log_refund(payment: Payment) -> None:
        log.info(
            "payment refunded",
            order_id=payment.order_id,
            payment_id=payment.payment_id,
            amount_minor=payment.refunded_amount_minor,
        )

    async def GetPayment(
        self, request: pb.GetPaymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPaymentResponse:
        Violations().require("payment_id", request.payment_id).raise_if_any()
        return pb.GetPaymentResponse(
            payment=_payment(await self._repository.get(request.payment_id))
        )

    async def ListPayments(
        self, request: pb.ListPaymentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPaymentsResponse:
        Violations().require("order_id", request.order_id).raise_if_any()
        payments = await self._repository.list_for_order(request.order_id)
        return pb.ListPaymentsResponse(payments=[_payment(p) for p in payments])
