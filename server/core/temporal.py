"""Connecting to Temporal, shared by the front door and the worker."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from temporalio.client import Client, Interceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from server.core.codec import EncryptionCodec
from server.core.payloads import encrypted_converter
from server.core.seal import Sealer, SealingInterceptor
from server.core.secrets import read_secret
from server.core.settings import Settings
from server.core.waiting import waiting_for
from server.core.workflow_tracing import WorkflowTracing

log = structlog.get_logger(__name__)

# Buckets of the order workflow's own duration histogram (seconds from the
# order's creation to its end): orders take seconds to weeks.
ORDER_DURATION_BUCKETS = [
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    21600.0,
    86400.0,
    259200.0,
    604800.0,
]


def metrics_runtime(address: str, *, port_setting: str = "TEMPORAL_METRICS_PORT") -> Runtime:
    """A Temporal runtime serving the SDK's metrics, and workflows' own, at address/metrics.

    Durations are in seconds. Create it once per process, before connecting.
    """
    try:
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    durations_as_seconds=True,
                    histogram_bucket_overrides={"order_duration_seconds": ORDER_DURATION_BUCKETS},
                )
            )
        )
    except ValueError as error:  # what the SDK raises when it cannot bind
        raise SystemExit(
            f"cannot serve Temporal metrics on {address} ({error}); "
            f"choose another port with {port_setting}"
        ) from None
    log.info("temporal metrics served", address=f"http://{address}/metrics")
    return runtime


def temporal_tls(settings: Settings) -> TLSConfig | bool | None:
    """TLS toward Temporal: a config when any TLS setting is given, else the SDK's default.

    The SDK's default is plaintext, or TLS with the system's CAs when an API
    key is set (as Temporal Cloud wants).
    """
    ca = read_secret("TEMPORAL_TLS_CA_FILE", settings.temporal_tls_ca_file)
    cert = read_secret("TEMPORAL_TLS_CERT_FILE", settings.temporal_tls_cert_file)
    key = read_secret("TEMPORAL_TLS_KEY_FILE", settings.temporal_tls_key_file)
    if (cert is None) != (key is None):
        raise SystemExit("TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together")
    given = ca, cert, settings.temporal_tls_server_name
    if not settings.temporal_tls and all(value is None for value in given):
        return None
    return TLSConfig(
        server_root_ca_cert=ca,
        client_cert=cert,
        client_private_key=key,
        domain=settings.temporal_tls_server_name,
    )


def temporal_api_key(settings: Settings) -> str | None:
    key = read_secret("TEMPORAL_API_KEY_FILE", settings.temporal_api_key_file)
    return key.decode().strip() if key is not None else None


async def connect_temporal(
    settings: Settings,
    wait_seconds: float = 120.0,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """Connects to Temporal, waiting for it to come up: processes start in any order.

    The client carries the trace context into workflows and activities (and a
    worker built on it does too), and seals every start, update and signal it
    sends (server/core/seal.py); `interceptors` come after that. Payloads are
    encrypted under the settings' payload keyring, and those that are not are
    refused (server/core/codec.py); TLS and the API key come from the
    TEMPORAL_TLS_* and TEMPORAL_API_KEY_FILE settings.
    """
    keyring = settings.payload_keyring()
    converter = encrypted_converter(EncryptionCodec(keyring))
    tls, api_key = temporal_tls(settings), temporal_api_key(settings)
    async for attempt in waiting_for("Temporal", RuntimeError, seconds=wait_seconds):
        with attempt:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                tls=tls,
                api_key=api_key,
                interceptors=[
                    WorkflowTracing(),
                    SealingInterceptor(Sealer(keyring)),
                    *interceptors,
                ],
                runtime=runtime,
                data_converter=converter,
            )
    raise AssertionError("unreachable")
