"""The codec server decodes for an operator, and for no one else."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
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


# Minted when the module is collected: it must outlive the tests that run before these.
TOKEN = token(Role.OPERATOR, lifetime=6 * 3600)
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
    return EncryptionCodec(parse_keyring(generate_keyring("k1"), source="test"), strict=False)


@contextlib.contextmanager
def serving(
    codec: EncryptionCodec,
    *,
    read_timeout: float = 10.0,
    max_connections: int = 16,
    max_body_bytes: int = 1024 * 1024,
) -> Iterator[CodecServer]:
    server = CodecServer(
        ("127.0.0.1", 0),
        codec=codec,
        is_operator=OperatorCheck(
            TokenVerifier(VerificationKeys.from_pem(SECRET, None), audience=AUDIENCE)
        ).is_operator,
        cors_origins=[UI],
        read_timeout=read_timeout,
        max_connections=max_connections,
        max_body_bytes=max_body_bytes,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def endpoint(codec: EncryptionCodec) -> Iterator[str]:
    with serving(codec) as server:
        yield f"http://127.0.0.1:{server.server_port}"


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
    status, answer, body = call(f"{endpoint}/decode", encrypted(codec), **headers)
    assert status == 401
    assert answer["WWW-Authenticate"].startswith("Bearer")
    assert b"Grace" not in body


def test_it_never_encodes_not_even_for_an_operator(endpoint: str) -> None:
    """An encrypted payload proves the platform made it: none is made here."""
    plain = DATA_CONVERTER.payload_converter.to_payloads([ADDRESS])
    status, _, body = call(f"{endpoint}/encode", as_json(plain), Authorization=f"Bearer {TOKEN}")
    assert status == 403
    assert b"binary/encrypted" not in body and b"Grace" not in body


def test_a_payload_that_is_not_encrypted_is_shown_as_it_is(endpoint: str) -> None:
    plain = DATA_CONVERTER.payload_converter.to_payloads([ADDRESS])
    status, _, decoded = call(f"{endpoint}/decode", as_json(plain), Authorization=f"Bearer {TOKEN}")
    assert status == 200
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


def raw_answer(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """What the server sends back to `request` before it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    answer = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def post_head(content_length: str) -> bytes:
    return (
        f"POST /decode HTTP/1.1\r\nHost: codec\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    ).encode()


def test_a_body_over_the_limit_is_refused_before_it_is_read(codec: EncryptionCodec) -> None:
    with serving(codec, max_body_bytes=1000) as server:
        answer = raw_answer(server.server_port, post_head("1001"))
        assert answer.startswith(b"HTTP/1.0 413 "), answer
        status, _, _ = call(
            f"http://127.0.0.1:{server.server_port}/decode",
            encrypted(codec),
            Authorization=f"Bearer {TOKEN}",
        )
        assert status == 200  # well under the limit


@pytest.mark.parametrize("length", ["-1", "ten", "1e3", ""])
def test_a_body_length_that_is_not_a_count_of_bytes_is_a_bad_request(
    endpoint: str, length: str
) -> None:
    port = int(endpoint.rsplit(":", 1)[1])
    answer = raw_answer(port, post_head(length) + b"{}")
    assert answer.startswith(b"HTTP/1.0 400 "), answer


class ThreadPeak:
    """The most threads this process ran at once while it was watching."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, threading.active_count())

    def __enter__(self) -> ThreadPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def decode_retrying(port: int, codec: EncryptionCodec, within: float = 60.0) -> int:
    """Asks for a decode until the server takes it (it answers 503 while full)."""
    deadline = time.monotonic() + within
    while True:
        try:
            status, _, _ = call(
                f"http://127.0.0.1:{port}/decode", encrypted(codec), Authorization=f"Bearer {TOKEN}"
            )
        except (ConnectionError, urllib.error.URLError):
            status = 0  # refused at the door: the body met a closed connection
        if status == 200 or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_stalled_connections_hold_few_threads_and_are_closed(codec: EncryptionCodec) -> None:
    cap = 8
    with serving(codec, read_timeout=1.0, max_connections=cap) as server:
        port = server.server_port
        before = threading.active_count()
        stalled: list[socket.socket] = []
        # A thread per connection it took in, and ours watching; a thread that
        # has given back its place may still be finishing as the next one starts.
        bound = before + 1 + cap + 2
        try:
            with ThreadPeak() as threads:
                # Half a request each, then nothing: what a slow or hostile client does.
                for _ in range(200):
                    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                    sock.sendall(post_head("100")[:40])
                    stalled.append(sock)
                # A real operator still gets through while they hang on.
                assert decode_retrying(port, codec) == 200
                assert threads.peak <= bound, threads.peak
                # Every one of them is closed by the server: at once past the cap,
                # after the read timeout for those it took in.
                answers = [read_until_closed(sock) for sock in stalled]
            assert threads.peak <= bound, threads.peak
            assert all(a == b"" or a.startswith(b"HTTP/1.0 503 ") for a in answers)
        finally:
            for sock in stalled:
                sock.close()


def test_a_request_that_trickles_in_is_cut_at_the_read_timeout(codec: EncryptionCodec) -> None:
    with serving(codec, read_timeout=1.0) as server:
        request = post_head("2")
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as sock:
            # A byte every 0.2 s: each read is quick, the request never ends in time.
            started = time.monotonic()
            with contextlib.suppress(ConnectionError):
                for byte in request:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.2)
                    if time.monotonic() - started > 30:
                        break
            assert read_until_closed(sock) == b""
            assert time.monotonic() - started < 30
