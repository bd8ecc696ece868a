"""Every method of the table, called without credentials and as every role.

The four services run in this process, with authentication on, exactly as
their processes wire them (tests/fuzz/inprocess.py). The cases come from the
services' descriptors and the table, so a new method cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from google.protobuf import message_factory
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from temporalio.testing import WorkflowEnvironment

from clients.errors import DOMAIN, Reason
from server.core.auth import TABLE, Role
from server.devstack.credentials import DevCredentials, ensure_credentials
from tests.fuzz.inprocess import Served, serving
from tests.security.test_policy_table import SERVICES

SERVICE_OF = {"OrderService": "orders", "PaymentService": "payments"}
SERVICE_OF |= {"InventoryService": "inventory", "ShippingService": "shipping"}
# The operators' API is served by the orders process.
SERVICE_OF |= {"OperatorService": "orders"}
METHODS = {
    f"/{service.full_name}/{method.name}": method
    for service in SERVICES
    for method in service.methods
}
CALLERS: list[Role | None] = [None, *Role]


@pytest_asyncio.fixture(scope="module")
async def credentials(tmp_path_factory: pytest.TempPathFactory) -> DevCredentials:
    return ensure_credentials(tmp_path_factory.mktemp("auth"))


@pytest_asyncio.fixture(scope="module")
async def services(
    temporal: WorkflowEnvironment, database_url: str, credentials: DevCredentials
) -> AsyncIterator[dict[str, Served]]:
    target = temporal.client.service_client.config.target_host
    async with serving(database_url, target, credentials=credentials) as served:
        yield served


def token_of(credentials: DevCredentials, role: Role) -> str:
    if role is Role.CUSTOMER_SERVICE:
        return credentials.mint(role, subject="shop", customer_id="cust-security")
    return credentials.token(role.value)


async def call(
    services: dict[str, Served], path: str, metadata: tuple[tuple[str, str], ...]
) -> grpc.StatusCode:
    """Calls `path` with an empty request; the status code it ends with."""
    method = METHODS[path]
    served = services[SERVICE_OF[method.containing_service.name]]
    # A plain channel to the same port: no token but the one given here.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.running.port}") as channel:
        request = message_factory.GetMessageClass(method.input_type)()
        try:
            if method.server_streaming:
                stream = channel.unary_stream(path, type(request).SerializeToString)
                async for _ in stream(request, metadata=metadata, timeout=10):
                    break
            else:
                unary = channel.unary_unary(path, type(request).SerializeToString)
                await unary(request, metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            check_error_info(error)
            return error.code()
    return grpc.StatusCode.OK


def check_error_info(error: grpc.aio.AioRpcError) -> None:
    """Refusals carry the platform's ErrorInfo, with the reason named after the code."""
    if error.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in status.details)
    assert info.domain == DOMAIN and info.reason == Reason(error.code().name).value


@pytest.mark.parametrize("path", sorted(TABLE))
@pytest.mark.parametrize("role", CALLERS, ids=lambda r: str(r or "no-credentials"))
async def test_only_the_roles_in_the_table_get_through(
    services: dict[str, Served], credentials: DevCredentials, path: str, role: Role | None
) -> None:
    metadata = () if role is None else (("authorization", f"Bearer {token_of(credentials, role)}"),)
    code = await call(services, path, metadata)
    if role is None:
        assert code == grpc.StatusCode.UNAUTHENTICATED
    elif role in TABLE[path].roles:
        # Let in: the empty request then meets the method's own checks, or succeeds.
        assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-token", "Basic d29ya2VyOnNlY3JldA==", "Bearer "],
)
async def test_credentials_that_prove_nothing_are_unauthenticated(
    services: dict[str, Served], header: str
) -> None:
    code = await call(
        services, "/inventory.v1.InventoryService/GetStock", (("authorization", header),)
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_expired_and_foreign_tokens_are_unauthenticated(
    services: dict[str, Served],
    credentials: DevCredentials,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    expired = credentials.mint(Role.OPERATOR, subject="old", lifetime_seconds=60, now=1_000_000)
    foreign = ensure_credentials(tmp_path_factory.mktemp("other")).token("operator")
    for token in (expired, foreign):
        code = await call(
            services,
            "/inventory.v1.InventoryService/GetStock",
            (("authorization", f"Bearer {token}"),),
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_health_checks_need_no_credentials(services: dict[str, Served]) -> None:
    for served in services.values():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{served.running.port}") as channel:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest()
            )
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
