"""Circuit breakers on the real stack: callers stay off a service that is down.

* The worker: payments is stopped and, in its place on its port, a
  stand-in answers every call UNAVAILABLE and counts the calls that reach
  it: payments as its callers see it when it is down behind a proxy or a
  load balancer with no instance left. Several orders wait to be charged
  meanwhile (a breaker is shared by every order of a worker; one order
  alone already backs off on its own schedule). Few of their attempts reach
  payments, and every order ships, charged once, when it is back.
* The front door (the service only stopped: it cannot be reached): once its
  breaker is open, CreateOrder answers UNAVAILABLE at once, with the time
  left in the cool-down as its RetryInfo.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import grpc
import pytest

from clients.errors import Reason, decode
from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.grpc_server import RETRY_DELAY_SECONDS
from server.core.settings import Settings
from tests.support.orders import (
    order_request,
    payments_of,
    place,
    rpc_error,
    stock_of,
    stock_sku,
    wait_for,
)
from tests.support.polling import eventually
from tests.support.stack import Process, Stack
from tests.support.telemetry import log_lines, scrape, value

pytestmark = pytest.mark.e2e

ORDERS = 6  # more than the default threshold (5 consecutive failures)
CHARGE = "/payments.v1.PaymentService/Charge"


class DownService(grpc.GenericRpcHandler):
    """Answers every call UNAVAILABLE, counting them by method."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method

        async def unavailable(request: bytes, context: grpc.aio.ServicerContext) -> Any:
            self.calls[method] += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no healthy upstream")

        return grpc.unary_unary_rpc_method_handler(unavailable)


async def _charge_attempts(stack: Stack, order_ids: list[str]) -> list[int]:
    """The attempt each order's charge is at (0 for an order not charging yet)."""
    attempts = []
    for order_id in order_ids:
        response = await stack.orders.GetOrder(
            pb.GetOrderRequest(order_id=order_id, view=pb.ORDER_VIEW_FULL)
        )
        progress = response.progress
        attempts.append(
            progress.current_step_attempt if progress.current_step == "charge_payment" else 0
        )
    return attempts


def _running(process: Process) -> None:
    if process.popen is None or process.popen.poll() is not None:
        process.start()


async def test_orders_stay_off_a_payments_that_is_down_and_ship_once_it_is_back(
    stack: Stack,
) -> None:
    if stack.tls_mode != "off":
        pytest.skip("the stand-in for payments serves plaintext")
    sku = await stock_sku(stack, quantity=ORDERS)
    worker, payments = stack.process("worker"), stack.process("payments")
    stand_in = DownService()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((stand_in,))
    # Accepted while payments is up (the front door keeps each card with it),
    # charged only once the worker is back, with payments down by then.
    worker.stop()
    try:
        order_ids = [(await place(stack, order_request(sku))).order_id for _ in range(ORDERS)]
        payments.stop()
        try:
            assert server.add_insecure_port(f"127.0.0.1:{stack.ports['payments']}")
            await server.start()
            worker.start()
            # Every order has tried its charge at least four times...
            attempts = await eventually(
                lambda: _charge_attempts(stack, order_ids),
                lambda attempts: min(attempts) >= 4,
                within=120,
                every=0.5,
            )
            reached = stand_in.calls[CHARGE]
        finally:
            await server.stop(None)
            payments.start()
    finally:
        _running(worker)
    await stack.wait_serving("payments")

    # ... yet few of those attempts reached payments: without the breaker,
    # at least the three failed attempts of every order would have.
    assert 0 < reached <= 2 * ORDERS, (reached, attempts)
    worker_metrics = scrape(stack.metrics_url("worker"))
    assert value(worker_metrics, "downstream_circuit_refused_total", service="payments") > 0
    opened = [
        line.record
        for line in log_lines(stack)
        if line.process == "worker"
        and line.record.get("service") == "payments"
        and line.record.get("new") == "open"
    ]
    assert opened, "the worker logged no breaker opening"

    # Payments is back: a probe closes the breaker, and every order ships,
    # charged once.
    for order_id in order_ids:
        final = (await wait_for(stack, order_id, (pb.ORDER_STATE_SHIPPED,), within=120))[-1]
        assert final.state == pb.ORDER_STATE_SHIPPED
        assert len(await payments_of(stack, order_id)) == 1
    assert await stock_of(stack, sku) == (0, 0)
    worker_metrics = scrape(stack.metrics_url("worker"))
    assert value(worker_metrics, "downstream_circuit_state", service="payments") == 0


@pytest.mark.parametrize("service", ["inventory", "payments"])
async def test_the_front_door_answers_at_once_with_the_time_left_while_its_breaker_is_open(
    stack: Stack, service: str
) -> None:
    """Pricing (inventory) and keeping the card (payments) are CreateOrder's two calls."""
    defaults = Settings.model_fields
    threshold = defaults["circuit_breaker_failures"].default
    cooldown = defaults["circuit_breaker_cooldown_seconds"].default
    sku = await stock_sku(stack, quantity=1)
    process = stack.process(service)

    def refused() -> float:
        samples = scrape(stack.metrics_url("orders"))
        return value(samples, "downstream_circuit_refused_total", service=service)

    process.stop()
    try:
        # The service's failures (it cannot be reached), answered with the default delay.
        for _ in range(threshold):
            code, error = await rpc_error(stack.orders.CreateOrder(order_request(sku)))
            assert (code, error.reason) == (
                grpc.StatusCode.UNAVAILABLE,
                Reason.DEPENDENCY_UNAVAILABLE,
            )
            assert error.retry_delay == RETRY_DELAY_SECONDS
        before = refused()
        # The breaker is open: refused without a call, and told how long to wait.
        code, error = await rpc_error(stack.orders.CreateOrder(order_request(sku)))
        assert (code, error.reason) == (grpc.StatusCode.UNAVAILABLE, Reason.DEPENDENCY_UNAVAILABLE)
        assert error.retry_delay is not None
        assert RETRY_DELAY_SECONDS < error.retry_delay <= cooldown
        assert refused() == before + 1
    finally:
        process.start()
    await stack.wait_serving(service)

    # Back: a caller that waits as told gets its order placed (the probe
    # closes the breaker, which later tests need closed).
    request = order_request(sku)
    for _ in range(5):
        try:
            await place(stack, request)
            break
        except grpc.aio.AioRpcError as failed:
            assert failed.code() == grpc.StatusCode.UNAVAILABLE
            await asyncio.sleep(decode(failed).retry_delay or RETRY_DELAY_SECONDS)
    else:
        raise AssertionError("the front door kept refusing after the service came back")
    samples = scrape(stack.metrics_url("orders"))
    assert value(samples, "downstream_circuit_state", service=service) == 0
