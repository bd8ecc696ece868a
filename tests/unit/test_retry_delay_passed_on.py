"""A server passes on the retry delay it was given (a breaker's cool-down) as RetryInfo.

The front door maps a refused catalog or payment-method call to its own
DEPENDENCY_UNAVAILABLE, keeping the delay (server/orders/placing.py); the
shared interceptor must send that delay, not its default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from clients.channels import open_channel
from clients.errors import Error, Reason, decode
from clients.proto.payments.v1 import payments_pb2, payments_pb2_grpc
from server.core.grpc_server import RETRY_DELAY_SECONDS, create_server


class Failing(payments_pb2_grpc.PaymentServiceServicer):
    def __init__(self) -> None:
        self.error = Error(Reason.DEPENDENCY_UNAVAILABLE, "away")

    async def GetPayment(
        self, request: payments_pb2.GetPaymentRequest, context: grpc.aio.ServicerContext
    ) -> payments_pb2.GetPaymentResponse:
        raise self.error


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[Failing, payments_pb2_grpc.PaymentServiceStub]]:
    servicer = Failing()
    server, port, _ = create_server(
        "127.0.0.1:0", service_names=["payments.v1.PaymentService"], reflection_on=False
    )
    payments_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, server)
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}", traced=False)
    try:
        yield servicer, payments_pb2_grpc.PaymentServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


async def _answer(stub: payments_pb2_grpc.PaymentServiceStub) -> Error:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetPayment(payments_pb2.GetPaymentRequest(payment_id="pay_1"), timeout=5)
    return decode(raised.value)


@pytest.mark.parametrize(("given", "sent"), [(7.25, 7.25), (None, RETRY_DELAY_SECONDS)])
async def test_a_retryable_error_carries_the_delay_it_was_given(
    served: tuple[Failing, payments_pb2_grpc.PaymentServiceStub],
    given: float | None,
    sent: float,
) -> None:
    servicer, stub = served
    servicer.error = Error(Reason.DEPENDENCY_UNAVAILABLE, "away", retry_delay=given)
    answer = await _answer(stub)
    assert answer.reason is Reason.DEPENDENCY_UNAVAILABLE
    assert answer.retry_delay == pytest.approx(sent)
