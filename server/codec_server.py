"""The codec server: lets operators read encrypted Temporal payloads.

`python -m server codec` serves Temporal's remote codec protocol, which the
Temporal UI and CLI speak: POST `<endpoint>/decode` with a
`temporal.api.common.v1.Payloads` as JSON, answered in kind. It decodes
leniently: a payload that is not encrypted is shown as it is.

It does not encode: `/encode` answers 403. An encrypted payload is the
worker's proof that the platform made it (server/core/codec.py), so a
codec server that encrypted for anyone holding an operator's token would let
the Temporal UI or CLI start or steer orders around the front door. Every call but
the CORS preflight must carry a bearer token with the operator role, the
same signed tokens the gRPC services accept (server/core/operator_token.py):
what it decodes is customer data. Each
decode is logged (who asked from where, how many payloads), never what it
returned.

    temporal workflow show -w ord_... \\
        --codec-endpoint http://127.0.0.1:8234 \\
        --codec-auth "Bearer $(cat .data/auth/operator.token)"

A small threaded HTTP server from the standard library: operators' reads
are few, and each is one AES-GCM pass per payload. Since it may face more
than operators, it holds no connection long: a request (headers and body)
must arrive within CODEC_READ_TIMEOUT_SECONDS, at most CODEC_MAX_CONNECTIONS
are served at once (each holds a thread; one more is answered 503 and closed
at once), and a body over CODEC_MAX_BODY_BYTES is answered 413 unread.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import structlog
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from server.core.codec import EncryptionCodec, PayloadDecryptionError
from server.core.operator_token import operator_check
from server.core.process import run as run_process
from server.core.process import stop_signal
from server.core.settings import Settings

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = structlog.get_logger(__name__)

Authorize = Callable[[str | None], bool]
_BUSY_BODY = b'{"error": "too many connections; retry shortly"}'
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


class CodecServer(ThreadingHTTPServer):
    daemon_threads = True
    # Connections the kernel holds until accepted: accepting is quick (past the
    # cap a connection is closed at once), so this only absorbs bursts.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        codec: EncryptionCodec,
        is_operator: Authorize,
        cors_origins: Iterable[str],
        read_timeout: float,
        max_connections: int,
        max_body_bytes: int,
    ) -> None:
        super().__init__(address, _Handler)
        self.codec = codec
        self.is_operator = is_operator
        self.cors_origins = frozenset(cors_origins)
        self.read_timeout = read_timeout
        self.max_body_bytes = max_body_bytes
        self._places = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Each connection holds a thread until it ends: past the cap it gets
        # none, and no queue to wait in either, only a 503.
        if not self._places.acquire(blocking=False):
            log.warning("codec server full: connection refused", client=client_address[0])
            _refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: nothing else gives the place back
            self._places.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._places.release()


def _refuse(connection: socket.socket) -> None:
    """Tells a connection over the cap to come back, without waiting on it."""
    try:
        connection.setblocking(False)
        connection.send(_BUSY)
        # What it sent unread would turn the close into a reset, and lose the 503.
        connection.recv(65536)
    except OSError:
        pass  # it is closed all the same


class _ReadDeadline(io.RawIOBase):
    """A connection's reads, which must all be done within `seconds` of its start.

    The socket timeout alone bounds each read: a client sending a byte now and
    then would keep its thread for as long as it liked.
    """

    def __init__(self, connection: socket.socket, seconds: float) -> None:
        self._connection = connection
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._connection.settimeout(left)
        try:
            return self._connection.recv_into(buffer)
        finally:
            self._connection.settimeout(self._seconds)  # for the answer's writes


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer

    def setup(self) -> None:
        # Each read and write waits at most read_timeout (http.server closes the
        # connection on a TimeoutError), and the whole request must arrive within it.
        super().setup()
        self.connection.settimeout(self.server.read_timeout)
        self.rfile.close()
        self.rfile = io.BufferedReader(_ReadDeadline(self.connection, self.server.read_timeout))

    # do_* and log_message: the names http.server dispatches to.
    def do_OPTIONS(self) -> None:
        """The browser's CORS preflight: it carries no credentials, and gets none."""
        self._answer(HTTPStatus.NO_CONTENT)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(HTTPStatus.OK, b"ok\n", "text/plain")
        else:
            self._answer(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        # The UI and the CLI may put the namespace in the endpoint: /{namespace}/decode.
        action = self.path.rstrip("/").rsplit("/", 1)[-1]
        transforms: dict[str, Callable[[Iterable[Payload]], list[Payload]]] = {
            "decode": self.server.codec.decrypt_all,
        }
        if action == "encode":
            self._error(
                HTTPStatus.FORBIDDEN,
                "this codec server only decodes: orders are started and changed through"
                " the front door (orders.v1.OrderService), never with payloads made here",
            )
            return
        if action not in transforms:
            self._error(HTTPStatus.NOT_FOUND, "POST to /decode")
            return
        if not self.server.is_operator(self.headers.get("Authorization")):
            log.warning("codec call refused: no operator token", client=self.client_address[0])
            self._error(HTTPStatus.UNAUTHORIZED, "an operator's bearer token is required")
            return
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not (declared.isascii() and declared.isdigit()):
            self._error(HTTPStatus.BAD_REQUEST, "Content-Length must be a number of bytes")
            return
        length, limit = int(declared), self.server.max_body_bytes
        if length > limit:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"at most {limit} bytes")
            return
        try:
            payloads = json_format.Parse(self.rfile.read(length), Payloads()).payloads
            result = Payloads(payloads=transforms[action](payloads))
        except json_format.ParseError as error:
            self._error(HTTPStatus.BAD_REQUEST, f"not a Payloads message in JSON: {error}")
            return
        except PayloadDecryptionError as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return
        log.info(
            f"payloads {action}d for an operator",
            count=len(payloads),
            namespace=self.headers.get("X-Namespace", ""),
            client=self.client_address[0],
        )
        self._answer(HTTPStatus.OK, json_format.MessageToJson(result).encode())

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._answer(status, json.dumps({"error": message}).encode())

    def _answer(
        self, status: HTTPStatus, body: bytes = b"", content_type: str = "application/json"
    ) -> None:
        self.send_response(status)
        origin = self.headers.get("Origin")
        if origin and origin in self.server.cors_origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header(
                "Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace"
            )
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Vary", "Origin")
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Bearer realm="temporal-codec"')
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the handler logs what matters through structlog."""


def main() -> None:
    """Process entry point (server/core/process.py): no traces, no /metrics."""
    run_process("codec", _serve, metrics=False, traced=False)


async def _serve(settings: Settings) -> None:
    """Serves from a thread of its own until signalled; the event loop only waits."""
    try:
        server = CodecServer(
            (settings.bind_host, settings.codec_server_port),
            codec=EncryptionCodec(settings.payload_keyring(), strict=False),
            is_operator=operator_check(settings).is_operator,
            cors_origins=[o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()],
            read_timeout=settings.codec_read_timeout_seconds,
            max_connections=settings.codec_max_connections,
            max_body_bytes=settings.codec_max_body_bytes,
        )
    except OSError as error:
        raise SystemExit(
            f"cannot serve the codec on {settings.bind_host}:{settings.codec_server_port}"
            f" ({error.strerror}); choose another port with CODEC_SERVER_PORT"
        ) from None
    stop = stop_signal()
    thread = threading.Thread(target=server.serve_forever, name="codec-server", daemon=True)
    thread.start()
    log.info("codec server listening", address=f"http://{settings.bind_host}:{server.server_port}")
    await stop.wait()
    server.shutdown()
    server.server_close()
    log.info("codec server stopped")
