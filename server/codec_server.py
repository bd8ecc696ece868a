"""The codec server: lets operators read encrypted Temporal payloads.

`python -m server codec` serves Temporal's remote codec protocol, which the
Temporal UI and CLI speak: POST `<endpoint>/decode` (or `/encode`) with a
`temporal.api.common.v1.Payloads` as JSON, answered in kind. Every call but
the CORS preflight must carry a bearer token with the operator role, the
same signed tokens the gRPC services accept (server/core/operator_token.py):
what it decodes is customer data. Each
decode is logged (who asked from where, how many payloads), never what it
returned.

    temporal workflow show -w ord_... \\
        --codec-endpoint http://127.0.0.1:8234 \\
        --codec-auth "Bearer $(cat .data/auth/operator.token)"

A small threaded HTTP server from the standard library: operators' reads
are few, and each is one AES-GCM pass per payload.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from server.core.codec import EncryptionCodec, PayloadDecryptionError
from server.core.logging import configure_logging, log_file
from server.core.operator_token import operator_check
from server.core.settings import load_settings

log = structlog.get_logger(__name__)

# Temporal limits a payload to 2 MiB and a request to 4 MiB; a batch of them stays well below this.
MAX_BODY_BYTES = 16 * 1024 * 1024
Authorize = Callable[[str | None], bool]


class CodecServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        codec: EncryptionCodec,
        is_operator: Authorize,
        cors_origins: Iterable[str],
    ) -> None:
        super().__init__(address, _Handler)
        self.codec = codec
        self.is_operator = is_operator
        self.cors_origins = frozenset(cors_origins)


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer

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
            "encode": self.server.codec.encrypt_all,
        }
        if action not in transforms:
            self._error(HTTPStatus.NOT_FOUND, "POST to /decode or /encode")
            return
        if not self.server.is_operator(self.headers.get("Authorization")):
            log.warning("codec call refused: no operator token", client=self.client_address[0])
            self._error(HTTPStatus.UNAUTHORIZED, "an operator's bearer token is required")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"at most {MAX_BODY_BYTES} bytes")
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
    settings = load_settings()
    configure_logging(
        "codec",
        log_format=settings.log_format,
        level=settings.log_level,
        log_file=log_file(settings, "codec"),
    )
    try:
        server = CodecServer(
            (settings.bind_host, settings.codec_server_port),
            codec=EncryptionCodec(settings.payload_keyring()),
            is_operator=operator_check(settings).is_operator,
            cors_origins=[o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()],
        )
    except OSError as error:
        raise SystemExit(
            f"cannot serve the codec on {settings.bind_host}:{settings.codec_server_port}"
            f" ({error.strerror}); choose another port with CODEC_SERVER_PORT"
        ) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="codec-server", daemon=True)
    thread.start()
    log.info("codec server listening", address=f"http://{settings.bind_host}:{server.server_port}")
    stop.wait()
    server.shutdown()
    server.server_close()
    log.info("codec server stopped")
