"""TLS and mutual TLS on a service, as its process starts it: who gets in, and as whom."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from clients.channels import CallerCredentials, open_channel
from clients.errors import Reason, decode
from clients.proto.common.v1 import money_pb2
from clients.proto.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from server.core.credentials import caller_credentials
from server.core.service import _prepare
from server.core.settings import Settings
from server.devstack.certs import CertificateFiles, ensure_certificates
from server.devstack.credentials import DevCredentials, ensure_credentials
from server.inventory import SERVICE

SET_STOCK = inventory_pb2.SetStockRequest(
    sku="TLS-1", quantity=1, unit_price=money_pb2.Money(currency_code="USD", amount_minor=100)
)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertificateFiles]:
    return ensure_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> DevCredentials:
    return ensure_credentials(tmp_path_factory.mktemp("auth"))


def settings(
    mode: str, database_url: str, files: CertificateFiles, credentials: DevCredentials
) -> Settings:
    return Settings(  # type: ignore[call-arg]  # by alias, as the environment would
        DATABASE_URL=database_url,
        DATABASE_POOL_MAX=2,
        TLS_MODE=mode,
        TLS_CA_FILE=str(files.ca),
        TLS_CERT_FILE=str(files.cert),
        TLS_KEY_FILE=str(files.key),
        JWT_SECRET_FILE=str(credentials.secret_file),
    )


@contextlib.asynccontextmanager
async def inventory(config: Settings) -> AsyncIterator[str]:
    running = await _prepare(SERVICE, config, 0)
    await running.server.start()
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        await running.server.stop(0)
        await running.close()


def caller(
    files: CertificateFiles | None, *, ca: Path | None = None, token: str | None = None
) -> CallerCredentials:
    return CallerCredentials(
        tls=True,
        root_certificates=ca.read_bytes() if ca else files.ca.read_bytes() if files else None,
        certificate_chain=files.cert.read_bytes() if files else None,
        private_key=files.key.read_bytes() if files else None,
        token=(lambda: token) if token else None,
    )


async def set_stock(target: str, credentials: CallerCredentials) -> grpc.StatusCode:
    async with open_channel(target, credentials, traced=False) as channel:
        try:
            await inventory_pb2_grpc.InventoryServiceStub(channel).SetStock(SET_STOCK, timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                assert decode(error).reason is Reason(error.code().name)
            return error.code()
    return grpc.StatusCode.OK


async def test_under_mtls_the_certificate_says_who_calls(
    database_url: str,
    certificates: dict[str, CertificateFiles],
    credentials: DevCredentials,
    tmp_path: Path,
) -> None:
    config = settings("mtls", database_url, certificates["inventory"], credentials)
    stranger = ensure_certificates(tmp_path / "other-ca", ["operator"])["operator"]
    async with inventory(config) as target:
        # A certificate naming the operator role: let in as the operator.
        assert await set_stock(target, caller(certificates["operator"])) == grpc.StatusCode.OK
        # The worker's certificate: known, but the table keeps SetStock for operators.
        worker = caller(certificates["worker"])
        assert await set_stock(target, worker) == grpc.StatusCode.PERMISSION_DENIED
        # A certificate for no role at all (a service's own): known, allowed nothing.
        assert (
            await set_stock(target, caller(certificates["payments"]))
            == grpc.StatusCode.PERMISSION_DENIED
        )
        # A token still names the caller more precisely than its certificate.
        operator_token = credentials.token("operator")
        with_token = caller(certificates["worker"], token=operator_token)
        assert await set_stock(target, with_token) == grpc.StatusCode.OK
        # No certificate, one from another CA, or no TLS at all: no connection.
        no_certificate = caller(None, ca=certificates["operator"].ca, token=operator_token)
        assert await set_stock(target, no_certificate) == grpc.StatusCode.UNAVAILABLE
        foreign = caller(stranger, ca=certificates["operator"].ca)
        assert await set_stock(target, foreign) == grpc.StatusCode.UNAVAILABLE
        plaintext = CallerCredentials(token=lambda: operator_token)
        assert await set_stock(target, plaintext) == grpc.StatusCode.UNAVAILABLE


async def test_under_tls_callers_bring_a_token(
    database_url: str, certificates: dict[str, CertificateFiles], credentials: DevCredentials
) -> None:
    config = settings("tls", database_url, certificates["inventory"], credentials)
    ca = certificates["inventory"].ca
    operator_token = credentials.token("operator")
    async with inventory(config) as target:
        assert await set_stock(target, caller(None, ca=ca, token=operator_token)) == (
            grpc.StatusCode.OK
        )
        assert await set_stock(target, caller(None, ca=ca)) == grpc.StatusCode.UNAUTHENTICATED
        # A client certificate proves nothing here: only mtls reads it.
        assert (
            await set_stock(target, caller(certificates["operator"]))
            == grpc.StatusCode.UNAUTHENTICATED
        )
        plaintext = CallerCredentials(token=lambda: operator_token)
        assert await set_stock(target, plaintext) == grpc.StatusCode.UNAVAILABLE


async def test_with_tls_off_a_token_over_plaintext_works(
    database_url: str, certificates: dict[str, CertificateFiles], credentials: DevCredentials
) -> None:
    config = settings("off", database_url, certificates["inventory"], credentials)
    async with inventory(config) as target:
        operator = CallerCredentials(token=lambda: credentials.token("operator"))
        assert await set_stock(target, operator) == grpc.StatusCode.OK
        assert await set_stock(target, CallerCredentials()) == grpc.StatusCode.UNAUTHENTICATED


def test_callers_present_their_certificate_under_mtls_and_need_a_token_otherwise(
    database_url: str, certificates: dict[str, CertificateFiles], credentials: DevCredentials
) -> None:
    config = settings("mtls", database_url, certificates["worker"], credentials)
    mutual = caller_credentials(config, "worker")
    assert mutual.tls and mutual.token is None
    assert mutual.certificate_chain == certificates["worker"].cert.read_bytes()
    plain = settings("off", database_url, certificates["worker"], credentials)
    with pytest.raises(SystemExit, match="SERVICE_TOKEN_FILE"):
        caller_credentials(plain, "worker")
    with_token = plain.model_copy(
        update={"service_token_file": str(credentials.token_file("worker"))}
    )
    token = caller_credentials(with_token, "worker").token
    assert token is not None and token() == credentials.token("worker")
