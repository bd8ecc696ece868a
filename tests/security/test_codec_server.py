"""The codec server decodes for an operator, and for no one else."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from server.codec_server import CodecServer
from server.core.auth import Role
from server.core.auth.tokens import TokenVerifier, VerificationKeys, mint_token
from server.core.codec import EncryptionCodec
from server.core.keyring import generate_keyring, parse_keyring
from server.core.operator_token import OperatorCheck
from server.core.payloads import DATA_CONVERTER
from worker.model import Address

SECRET = b"a-signing-secret-for-the-codec-server-tests"
AUDIENCE = "order-platform"


def token(role: Role, secret: bytes = SECRET, lifetime: float = 600) -> str:
    return mint_token(
        secret, subject="someone", role=role, audience=AUDIENCE, lifetime_seconds=lifetime
    )


TOKEN = token(Role.OPERATOR)
UI = "http://localhost:8233"
ADDRESS = Address(
    name="Grace Hopper",
    line1="1 Compiler Way",
    city="Arlington",
    postal_code="22201",
    country_code="US",
)


@pytest.fixture(scope="module")
def codec() -> EncryptionCodec:
    return EncryptionCodec(parse_keyring(generate_keyring("k1"), source="test"))


@pytest.fixture(scope="module")
def endpoint(codec: EncryptionCodec) -> Iterator[str]:
    server = CodecServer(
        ("127.0.0.1", 0),
        codec=codec,
        is_operator=OperatorCheck(
            TokenVerifier(VerificationKeys.from_pem(SECRET, None), audience=AUDIENCE)
        ).is_operator,
        cors_origins=[UI],
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def call(
    url: str, body: bytes | None = None, method: str = "POST", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def as_json(payloads: Any) -> bytes:
    return json_format.MessageToJson(Payloads(payloads=payloads)).encode()


def encrypted(codec: EncryptionCodec) -> bytes:
    return as_json(codec.encrypt_all(DATA_CONVERTER.payload_converter.to_payloads([ADDRESS])))


def test_an_operator_reads_a_payload(endpoint: str, codec: EncryptionCodec) -> None:
    status, headers, body = call(
        f"{endpoint}/decode",
        encrypted(codec),
        Authorization=f"Bearer {TOKEN}",
        **{"Content-Type": "application/json", "X-Namespace": "default", "Origin": UI},
    )
    assert status == 200, body
    decoded = json_format.Parse(body, Payloads()).payloads
    assert DATA_CONVERTER.payload_converter.from_payloads(decoded, [Address]) == [ADDRESS]
    assert headers["Access-Control-Allow-Origin"] == UI


def test_the_namespace_may_be_in_the_endpoint(endpoint: str, codec: EncryptionCodec) -> None:
    status, _, body = call(
        f"{endpoint}/default/decode", encrypted(codec), Authorization=f"Bearer {TOKEN}"
    )
    assert status == 200
    assert b"Grace Hopper" in json_format.Parse(body, Payloads()).payloads[0].data


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        f"Bearer {TOKEN}x",
        TOKEN,
        f"Basic {TOKEN}",
        "Bearer operator",
        f"Bearer {token(Role.WORKER)}",
        f"Bearer {token(Role.CUSTOMER_SERVICE)}",
        f"Bearer {token(Role.OPERATOR, secret=b'another-secret-of-enough-length-0123')}",
        f"Bearer {token(Role.OPERATOR, lifetime=-3600)}",
    ],
    ids=[
        "none",
        "empty",
        "wrong",
        "no-scheme",
        "basic",
        "not-a-token",
        "worker",
        "customer-service",
        "another-signer",
        "expired",
    ],
)
def test_anyone_else_is_refused(
    endpoint: str, codec: EncryptionCodec, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for action in ("decode", "encode"):
        status, answer, body = call(f"{endpoint}/{action}", encrypted(codec), **headers)
        assert status == 401
        assert answer["WWW-Authenticate"].startswith("Bearer")
        assert b"Grace" not in body


def test_encode_then_decode_round_trips(endpoint: str) -> None:
    plain = DATA_CONVERTER.payload_converter.to_payloads([ADDRESS])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, _, encoded = call(f"{endpoint}/encode", as_json(plain), **auth)
    assert status == 200
    assert b"Grace" not in json_format.Parse(encoded, Payloads()).SerializeToString()
    status, _, decoded = call(f"{endpoint}/decode", encoded, **auth)
    assert list(json_format.Parse(decoded, Payloads()).payloads) == list(plain)


def test_the_browser_preflight_needs_no_token(endpoint: str) -> None:
    status, headers, _ = call(f"{endpoint}/decode", method="OPTIONS", Origin=UI)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == UI
    assert "authorization" in headers["Access-Control-Allow-Headers"].lower()


def test_other_origins_get_no_cors_grant(endpoint: str) -> None:
    _, headers, _ = call(f"{endpoint}/decode", method="OPTIONS", Origin="http://evil.example")
    assert "Access-Control-Allow-Origin" not in headers


def test_a_payload_it_cannot_decrypt_is_a_bad_request(endpoint: str) -> None:
    other = EncryptionCodec(parse_keyring(generate_keyring("elsewhere"), source="test"))
    status, _, body = call(f"{endpoint}/decode", encrypted(other), Authorization=f"Bearer {TOKEN}")
    assert status == 400
    assert "elsewhere" in json.loads(body)["error"]


def test_an_operator_check_needs_a_way_to_verify_tokens() -> None:
    with pytest.raises(ValueError, match="verifier"):
        OperatorCheck(None)
