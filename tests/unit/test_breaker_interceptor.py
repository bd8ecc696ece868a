"""The circuit breaker on a real channel to a real (in-process) gRPC server.

What counts as a failure, what a refused call looks like to its caller (and
to an activity), and what the breaker tells the metrics and the log.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
import pytest_asyncio
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from clients.channels import open_channel
from clients.errors import Reason, decode
from clients.proto.payments.v1 import payments_pb2, payments_pb2_grpc
from server.core.breaker import State
from server.core.breaker_interceptor import CircuitBreaking, breaker_for, refused_by_breaker
from server.core.metrics import CIRCUIT_REFUSED, CIRCUIT_STATE
from tests.support.clock import Clock
from tests.support.stack import free_port
from worker.activities import OrderActivities
from worker.model import ChargeInput

THRESHOLD = 3
COOLDOWN = 10.0
CHARGE = payments_pb2.ChargeRequest(idempotency_key="ord_1:charge", order_id="ord_1")


class Payments(payments_pb2_grpc.PaymentServiceServicer):
    """Answers Charge with `code` (OK: a payment), counting the calls that reach it."""

    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK
        self.calls = 0
        self.hold: asyncio.Event | None = None
        self.holding = asyncio.Event()

    async def Charge(
        self, request: payments_pb2.ChargeRequest, context: grpc.aio.ServicerContext
    ) -> payments_pb2.ChargeResponse:
        self.calls += 1
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()
        if self.code is not grpc.StatusCode.OK:
            await context.abort(self.code, f"answered {self.code.name}")
        return payments_pb2.ChargeResponse(payment=payments_pb2.Payment(payment_id="pay_1"))


@pytest_asyncio.fixture
async def payments() -> AsyncIterator[tuple[Payments, int]]:
    servicer = Payments()
    server = grpc.aio.server()
    payments_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, port
    finally:
        await server.stop(None)


class Guarded:
    """A payments stub whose channel has a breaker on a hand-moved clock."""

    def __init__(self, port: int) -> None:
        # A name of its own, so that each test reads its own metric series.
        self.service = f"payments-{uuid.uuid4().hex[:8]}"
        self.clock = Clock()
        self.breaker = breaker_for(
            self.service, threshold=THRESHOLD, cooldown=COOLDOWN, clock=self.clock
        )
        self.channel = open_channel(
            f"127.0.0.1:{port}", interceptors=[CircuitBreaking(self.service, self.breaker)]
        )
        self.stub = payments_pb2_grpc.PaymentServiceStub(self.channel)

    async def charge(self, deadline: float = 5.0) -> grpc.StatusCode:
        try:
            await self.stub.Charge(CHARGE, timeout=deadline)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    async def refused(self) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await self.stub.Charge(CHARGE, timeout=5.0)
        return raised.value

    def gauge(self) -> float:
        return CIRCUIT_STATE.labels(self.service)._value.get()

    def refusals(self) -> float:
        return CIRCUIT_REFUSED.labels(self.service)._value.get()


@pytest_asyncio.fixture
async def guarded(payments: tuple[Payments, int]) -> AsyncIterator[Guarded]:
    guarded = Guarded(payments[1])
    try:
        yield guarded
    finally:
        await guarded.channel.close()


async def test_unavailable_answers_open_it_then_calls_fail_fast_with_the_time_left(
    payments: tuple[Payments, int], guarded: Guarded
) -> None:
    servicer, _ = payments
    servicer.code = grpc.StatusCode.UNAVAILABLE
    assert guarded.gauge() == State.CLOSED
    with capture_logs() as logs:
        for _ in range(THRESHOLD):
            assert await guarded.charge() == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls == THRESHOLD
    assert guarded.gauge() == State.OPEN
    [opened] = [line for line in logs if line.get("service") == guarded.service]
    assert opened["new"] == "open" and opened["log_level"] == "warning"

    guarded.clock.now += 4.0
    refused = await guarded.refused()
    assert servicer.calls == THRESHOLD  # it never reached the service
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    error = decode(refused)
    assert error.reason is Reason.DEPENDENCY_UNAVAILABLE
    assert error.metadata["service"] == guarded.service
    assert error.retry_delay == pytest.approx(COOLDOWN - 4.0)
    assert refused_by_breaker(error)
    assert guarded.refusals() == 1


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
    ],
)
async def test_business_errors_never_open_it(
    payments: tuple[Payments, int], guarded: Guarded, code: grpc.StatusCode
) -> None:
    servicer, _ = payments
    servicer.code = code
    for _ in range(THRESHOLD * 3):
        assert await guarded.charge() == code
    assert servicer.calls == THRESHOLD * 3
    assert guarded.breaker.state is State.CLOSED


async def test_a_business_error_is_an_answer_and_resets_the_count(
    payments: tuple[Payments, int], guarded: Guarded
) -> None:
    servicer, _ = payments
    for code in [grpc.StatusCode.UNAVAILABLE] * (THRESHOLD - 1) + [
        grpc.StatusCode.FAILED_PRECONDITION
    ]:
        servicer.code = code
        await guarded.charge()
    servicer.code = grpc.StatusCode.UNAVAILABLE
    for _ in range(THRESHOLD - 1):
        await guarded.charge()
    assert guarded.breaker.state is State.CLOSED


async def test_answers_that_come_too_late_count(
    payments: tuple[Payments, int], guarded: Guarded
) -> None:
    servicer, _ = payments
    servicer.hold = asyncio.Event()  # never set: every call runs out of time
    for _ in range(THRESHOLD):
        assert await guarded.charge(deadline=0.05) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert guarded.breaker.state is State.OPEN
    servicer.hold.set()


async def test_a_service_that_cannot_be_reached_opens_it() -> None:
    guarded = Guarded(free_port())  # nobody listens there
    try:
        for _ in range(THRESHOLD):
            assert await guarded.charge() == grpc.StatusCode.UNAVAILABLE
        assert guarded.breaker.state is State.OPEN
        assert decode(await guarded.refused()).retry_delay == pytest.approx(COOLDOWN)
    finally:
        await guarded.channel.close()


async def test_after_the_cooldown_a_probe_that_succeeds_closes_it(
    payments: tuple[Payments, int], guarded: Guarded
) -> None:
    servicer, _ = payments
    servicer.code = grpc.StatusCode.UNAVAILABLE
    for _ in range(THRESHOLD):
        await guarded.charge()
    guarded.clock.now += COOLDOWN
    servicer.code = grpc.StatusCode.OK
    with capture_logs() as logs:
        assert await guarded.charge() == grpc.StatusCode.OK
    assert servicer.calls == THRESHOLD + 1
    assert guarded.breaker.state is State.CLOSED and guarded.gauge() == State.CLOSED
    assert [(line["old"], line["new"]) for line in logs] == [
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert await guarded.charge() == grpc.StatusCode.OK


async def test_after_the_cooldown_a_probe_that_fails_opens_it_again(
    payments: tuple[Payments, int], guarded: Guarded
) -> None:
    servicer, _ = payments
    servicer.code = grpc.StatusCode.UNAVAILABLE
    for _ in range(THRESHOLD):
        await guarded.charge()
    guarded.clock.now += COOLDOWN + 1
    assert await guarded.charge() == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls == THRESHOLD + 1
    assert guarded.gauge() == State.OPEN
    assert decode(await guarded.refused()).retry_delay == pytest.approx(COOLDOWN)
    assert servicer.calls == THRESHOLD + 1


async def test_only_one_probe_runs_and_a_cancelled_one_leaves_the_next_to_probe(
    payments: tuple[Payments, int], guarded: Guarded
) -> None:
    servicer, _ = payments
    servicer.code = grpc.StatusCode.UNAVAILABLE
    for _ in range(THRESHOLD):
        await guarded.charge()
    guarded.clock.now += COOLDOWN
    servicer.hold = asyncio.Event()
    probe = asyncio.ensure_future(guarded.stub.Charge(CHARGE, timeout=5.0))
    await servicer.holding.wait()
    # The probe is out: others are refused without reaching the service.
    assert decode(await guarded.refused()).retry_delay == pytest.approx(1.0)
    assert servicer.calls == THRESHOLD + 1
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    servicer.hold, servicer.code = None, grpc.StatusCode.OK
    assert await guarded.charge() == grpc.StatusCode.OK
    assert guarded.breaker.state is State.CLOSED


async def test_an_activity_refused_by_the_breaker_retries_when_the_cooldown_ends(
    payments: tuple[Payments, int], guarded: Guarded
) -> None:
    servicer, _ = payments
    servicer.code = grpc.StatusCode.UNAVAILABLE
    fake: Any = None
    activities = OrderActivities(payments=guarded.stub, inventory=fake, shipping=fake, orders=fake)
    charge = ChargeInput("ord_1", "USD", 5, payment_method_id="pm_1")
    for _ in range(THRESHOLD):
        with pytest.raises(ApplicationError) as failed:
            await ActivityEnvironment().run(activities.charge_payment, charge)
        # A service that answers UNAVAILABLE is retried on the policy's schedule.
        assert failed.value.next_retry_delay is None
        assert failed.value.type == Reason.DEPENDENCY_UNAVAILABLE.value
    guarded.clock.now += 2.5
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.charge_payment, charge)
    assert refused.value.type == Reason.DEPENDENCY_UNAVAILABLE.value
    assert not refused.value.non_retryable
    delay = refused.value.next_retry_delay
    assert delay is not None
    assert delay.total_seconds() == pytest.approx(COOLDOWN - 2.5)
    assert delay > timedelta(0)
