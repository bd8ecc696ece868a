"""One frozen settings object per process, read from the environment at start-up.

Every value has a default that fits `make run` on one machine; a malformed
value stops the process with a message naming the variable.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from functools import cached_property
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clients.channels import channel_target
from server.core.keyring import Keyring, KeyringError, load_keyring
from server.core.services import CALLED, INVENTORY, ORDERS, PAYMENTS, SHIPPING, WORKER

# Where `make run` starts the embedded Postgres when DATABASE_URL is not set.
EMBEDDED_POSTGRES_PORT = 54329
EMBEDDED_DATABASE_URL = f"postgresql://postgres@127.0.0.1:{EMBEDDED_POSTGRES_PORT}/postgres"
# libpq takes a password in the query too: postgresql://u@h/db?password=...
_PASSWORD_IN_QUERY = re.compile(r"(?i)((?:^|[?&;])(?:ssl)?password=)[^&;#]*")
# A port to listen on (0: any free one).
Port = Annotated[int, Field(ge=0, le=65535)]


def _masked(value: str) -> str:
    """`value` with the password of a URL in it, if any, replaced by ***."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        # Not a URL that can be read apart: show none of it rather than risk a password.
        return "***"
    if password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}")
    if parts.query:
        parts = parts._replace(query=_PASSWORD_IN_QUERY.sub(r"\1***", parts.query))
    return parts.geturl()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    # Where the services listen, and where they find each other. Each service
    # may listen on a host of its own (the front door on a public interface,
    # the others on a private one); unset, BIND_HOST. Every service has the
    # same settings under its own prefix (server/core/services.py, where the
    # default ports are); `port_of`, `target_of` and the like read them by name.
    bind_host: str = Field("127.0.0.1", alias="BIND_HOST")
    orders_bind_host: str | None = Field(None, alias="ORDERS_BIND_HOST")
    payments_bind_host: str | None = Field(None, alias="PAYMENTS_BIND_HOST")
    inventory_bind_host: str | None = Field(None, alias="INVENTORY_BIND_HOST")
    shipping_bind_host: str | None = Field(None, alias="SHIPPING_BIND_HOST")
    orders_port: Port = Field(ORDERS.port, alias="ORDERS_PORT")
    payments_port: Port = Field(PAYMENTS.port, alias="PAYMENTS_PORT")
    inventory_port: Port = Field(INVENTORY.port, alias="INVENTORY_PORT")
    shipping_port: Port = Field(SHIPPING.port, alias="SHIPPING_PORT")
    # Where the callers (the front door, the worker) reach each service: one
    # address, or every instance's "ip:port" separated by commas, which their
    # channels balance over with round_robin.
    payments_address: str | None = Field(None, alias="PAYMENTS_ADDRESS")
    inventory_address: str | None = Field(None, alias="INVENTORY_ADDRESS")
    shipping_address: str | None = Field(None, alias="SHIPPING_ADDRESS")
    # The callers' circuit breakers, one per service they call
    # (server/core/breaker.py): after this many consecutive calls to a
    # service fail (unreachable, UNAVAILABLE, DEADLINE_EXCEEDED), calls to it
    # fail at once for the cool-down, then one call probes it.
    circuit_breaker_enabled: bool = Field(True, alias="CIRCUIT_BREAKER_ENABLED")
    circuit_breaker_failures: int = Field(5, alias="CIRCUIT_BREAKER_FAILURES", ge=1)
    circuit_breaker_cooldown_seconds: float = Field(
        10.0, alias="CIRCUIT_BREAKER_COOLDOWN_SECONDS", gt=0
    )

    database_url: str = Field(EMBEDDED_DATABASE_URL, alias="DATABASE_URL")
    database_pool_max: int = Field(10, alias="DATABASE_POOL_MAX", ge=1)
    # Each service may keep its schema in a database of its own; unset, DATABASE_URL.
    # The worker writes the order projection: it uses ORDERS_DATABASE_URL.
    orders_database_url: str | None = Field(None, alias="ORDERS_DATABASE_URL")
    payments_database_url: str | None = Field(None, alias="PAYMENTS_DATABASE_URL")
    inventory_database_url: str | None = Field(None, alias="INVENTORY_DATABASE_URL")
    shipping_database_url: str | None = Field(None, alias="SHIPPING_DATABASE_URL")
    # Where GetOrder and ListOrders read (a replica of the orders database);
    # unset, the orders database itself. docs/scaling.md says which reads go where.
    orders_read_database_url: str | None = Field(None, alias="ORDERS_READ_DATABASE_URL")
    # The order event log (WatchOrder's history) is partitioned by day: the
    # orders service creates partitions this many days ahead and drops those
    # older than the retention, every ORDER_EVENTS_MAINTENANCE_SECONDS (0: never,
    # when `python -m server maintenance` runs on a schedule instead).
    order_events_retention_days: int = Field(30, alias="ORDER_EVENTS_RETENTION_DAYS", ge=1)
    order_events_partitions_ahead_days: int = Field(
        7, alias="ORDER_EVENTS_PARTITIONS_AHEAD_DAYS", ge=1
    )
    order_events_maintenance_seconds: float = Field(
        3600.0, alias="ORDER_EVENTS_MAINTENANCE_SECONDS", ge=0
    )
    # How often the orders service looks for order workflows that ended
    # outside the saga (terminated, timed out, failed) or completed ahead of
    # the projection (server/orders/abandoned.py), and refreshes the order
    # health gauges (server/orders/health.py): 0, never.
    order_audit_seconds: float = Field(30.0, alias="ORDER_AUDIT_SECONDS", ge=0)

    # Admission control at the front door (server/orders/admission.py). Rates
    # are in the `limits` notation: "10 per 2 seconds", "5/second".
    admission_enabled: bool = Field(True, alias="ADMISSION_ENABLED")
    admission_customer_order_rate: str = Field(
        "10 per 2 seconds", alias="ADMISSION_CUSTOMER_ORDER_RATE"
    )
    admission_order_rate: str = Field("200 per 2 seconds", alias="ADMISSION_ORDER_RATE")
    admission_customer_in_flight: int = Field(50, alias="ADMISSION_CUSTOMER_IN_FLIGHT", ge=1)
    admission_in_flight: int = Field(300, alias="ADMISSION_IN_FLIGHT", ge=1)
    admission_max_waiting: int = Field(100, alias="ADMISSION_MAX_WAITING", ge=1)
    admission_caller_reads: int = Field(100, alias="ADMISSION_CALLER_READS", ge=1)
    admission_caller_streams: int = Field(100, alias="ADMISSION_CALLER_STREAMS", ge=1)
    admission_streams: int = Field(2000, alias="ADMISSION_STREAMS", ge=1)
    admission_refresh_seconds: float = Field(0.5, alias="ADMISSION_REFRESH_SECONDS", gt=0)

    temporal_address: str = Field("127.0.0.1:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", alias="TEMPORAL_NAMESPACE")
    task_queue: str = Field("orders", alias="TEMPORAL_TASK_QUEUE")

    # How long the simulated carrier takes to book a shipment.
    shipping_booking_seconds: float = Field(2.0, alias="SHIPPING_BOOKING_SECONDS", ge=0)
    # How long tok_slow keeps a charge waiting.
    payments_slow_seconds: float = Field(3.0, alias="PAYMENTS_SLOW_SECONDS", ge=0)

    # How long the front door waits for the order workflow to confirm a change
    # (CreateOrder, CancelOrder...) before answering UNAVAILABLE: the change
    # is kept, and repeating the same request picks up its outcome.
    order_workflow_wait_seconds: float = Field(10.0, alias="ORDER_WORKFLOW_WAIT_SECONDS", gt=0)
    # The order workflow's task timeout. Its steps run inside workflow tasks
    # (local activities), and the worker cuts a task at 80% of this so that
    # queries, updates and cancellations that arrived meanwhile are handled;
    # a worker that dies mid-task has the task retried after this long.
    order_workflow_task_seconds: float = Field(
        4.0, alias="ORDER_WORKFLOW_TASK_SECONDS", ge=1, le=60
    )

    # Delivery tracking: its workflow continues as new this often, and an
    # order not delivered this long after shipping escalates.
    delivery_tracking_period_hours: float = Field(
        24.0, alias="DELIVERY_TRACKING_PERIOD_HOURS", gt=0
    )
    delivery_escalation_days: float = Field(7.0, alias="DELIVERY_ESCALATION_DAYS", gt=0)

    log_format: str = Field("auto", alias="LOG_FORMAT", pattern="^(auto|json|console)$")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    # When set, each process also writes its log as JSON lines to <LOG_DIR>/<process>.jsonl.
    log_dir: str | None = Field(None, alias="LOG_DIR")

    # Where each process serves /metrics for Prometheus (0: any free port).
    metrics_host: str = Field("127.0.0.1", alias="METRICS_HOST")
    orders_metrics_port: Port = Field(ORDERS.metrics_port, alias="ORDERS_METRICS_PORT")
    payments_metrics_port: Port = Field(PAYMENTS.metrics_port, alias="PAYMENTS_METRICS_PORT")
    inventory_metrics_port: Port = Field(INVENTORY.metrics_port, alias="INVENTORY_METRICS_PORT")
    shipping_metrics_port: Port = Field(SHIPPING.metrics_port, alias="SHIPPING_METRICS_PORT")
    worker_metrics_port: Port = Field(WORKER.metrics_port, alias="WORKER_METRICS_PORT")
    # The worker's Temporal SDK metrics (and the order workflow's own) have an endpoint
    # of their own, served by the SDK; it needs a fixed port.
    temporal_metrics_port: int = Field(9106, alias="TEMPORAL_METRICS_PORT", ge=1, le=65535)
    # The front door's Temporal client metrics (its calls to Temporal), likewise.
    orders_temporal_metrics_port: int = Field(
        9107, alias="ORDERS_TEMPORAL_METRICS_PORT", ge=1, le=65535
    )

    # Tracing: spans go over OTLP when an endpoint is set, and as JSON lines to a
    # file when OTEL_TRACES_FILE is set (`make run` sets it); both may be on.
    otel_service_name: str | None = Field(None, alias="OTEL_SERVICE_NAME")
    otel_exporter_otlp_endpoint: str | None = Field(None, alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_traces_file: str | None = Field(None, alias="OTEL_TRACES_FILE")
    # The share of reads (Get*, List*, Watch*) without a caller's trace that
    # start one, and of every other call (writes: CreateOrder and the like,
    # and with them the order's whole saga). Reads are many and alike: one in
    # a hundred is tens of traces a second on a busy front door, where one in
    # twenty cost a cached GetOrder a tenth of its throughput
    # (docs/performance.md, "A cached read at the bare server's pace").
    trace_reads_ratio: float = Field(0.01, alias="TRACE_READS_RATIO", ge=0, le=1)
    trace_writes_ratio: float = Field(1.0, alias="TRACE_WRITES_RATIO", ge=0, le=1)
    # In a sampled trace every SQL statement is counted on its call's span; one
    # that takes this long (or fails) is also a span of its own; 0: every one
    # (server/core/sql_tracing.py says why not by default).
    trace_sql_min_ms: float = Field(10.0, alias="TRACE_SQL_MIN_MS", ge=0)

    # Whether the worker runs workflow code in the SDK's sandbox (worker/main.py
    # says why it does not by default).
    workflow_sandbox: bool = Field(False, alias="WORKFLOW_SANDBOX")
    # Worker tuning; unset means the Temporal SDK's default. Pollers: how many
    # long polls each worker keeps open on the task queue; concurrency: how many
    # tasks it runs at once; the sticky cache: how many workflows it keeps in
    # memory so that their next task needs no replay.
    worker_workflow_task_pollers: int | None = Field(
        None, alias="WORKER_WORKFLOW_TASK_POLLERS", ge=1
    )
    worker_activity_task_pollers: int | None = Field(
        None, alias="WORKER_ACTIVITY_TASK_POLLERS", ge=1
    )
    # An order's workflow task runs its steps (local activities) in the
    # worker, and its timeout (ORDER_WORKFLOW_TASK_SECONDS) counts from the
    # moment the worker takes it. A worker that takes more tasks than it can
    # run at once (the SDK takes 100) lets them time out inside it, under
    # load, and each is then run again: work done twice, and less done. With
    # few taken at a time, the rest wait in Temporal's queue, where the front
    # door counts them as backlog and sheds load (server/orders/admission.py).
    # Twenty rather than ten since the worker yields the CPU (WORKER_NICE):
    # its tasks then wait for a core longer, and ten at a time left two cores
    # a fifth idle under overload (docs/performance.md, "Overload").
    worker_max_concurrent_workflow_tasks: int = Field(
        20, alias="WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", ge=2
    )
    # How much of a shared machine's CPU the worker leaves to the other
    # processes first (its os.nice; 0 to 19). Callers wait on the front door
    # and the services; the worker's work waits in Temporal's queue and loses
    # nothing by waiting a few milliseconds more. Where they share cores, the
    # worker would otherwise take them from a refusal that must be answered
    # at once (docs/performance.md, "Overload").
    worker_nice: int = Field(10, alias="WORKER_NICE", ge=0, le=19)
    # The event loop of the gRPC services (the front door, payments,
    # inventory, shipping): uvloop's spends less of the process's CPU on
    # each call than asyncio's (docs/performance.md, "A cached read at the
    # bare server's pace"). "asyncio" runs them on the standard library's.
    event_loop: Literal["uvloop", "asyncio"] = Field("uvloop", alias="EVENT_LOOP")
    worker_max_concurrent_activities: int | None = Field(
        None, alias="WORKER_MAX_CONCURRENT_ACTIVITIES", ge=1
    )
    worker_max_concurrent_local_activities: int | None = Field(
        None, alias="WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES", ge=1
    )
    worker_max_cached_workflows: int = Field(1000, alias="WORKER_MAX_CACHED_WORKFLOWS", ge=0)
    # Worker Versioning (docs/versioning.md): with WORKER_VERSIONING on, the
    # worker polls as version WORKER_BUILD_ID of deployment
    # WORKER_DEPLOYMENT_NAME, and an order stays on the version it started on.
    # Off, every worker runs every workflow and changes ship as patches.
    worker_versioning: bool = Field(False, alias="WORKER_VERSIONING")
    worker_deployment_name: str = Field(
        "order-platform", alias="WORKER_DEPLOYMENT_NAME", min_length=1
    )
    worker_build_id: str | None = Field(
        None, alias="WORKER_BUILD_ID", min_length=1, validate_default=True
    )

    # Payload encryption (server/core/codec.py): the keyring as JSON text
    # (PAYLOAD_KEYS, e.g. from a secret store) or a file holding it
    # (PAYLOAD_KEYS_FILE); with neither, a development ring under .data/secrets/.
    # Every process that talks to Temporal needs the same ring.
    payload_keys: SecretStr | None = Field(None, alias="PAYLOAD_KEYS")
    payload_keys_file: str | None = Field(None, alias="PAYLOAD_KEYS_FILE")
    # The payment service's keyring for the card tokens it keeps (payment methods).
    payment_method_keys: SecretStr | None = Field(None, alias="PAYMENT_METHOD_KEYS")
    payment_method_keys_file: str | None = Field(None, alias="PAYMENT_METHOD_KEYS_FILE")
    # The codec server (server/codec_server.py): where it listens, which web
    # origins (the Temporal UI's) may call it, and the operators' bearer token.
    codec_server_port: int = Field(8234, alias="CODEC_SERVER_PORT", ge=0, le=65535)
    codec_cors_origins: str = Field(
        "http://localhost:8233,http://127.0.0.1:8233", alias="CODEC_CORS_ORIGINS"
    )
    # What one caller may hold of it: a request (headers and body) arrives
    # within the timeout; the connections served at once (a thread each);
    # the body's size (Temporal limits a payload to 2 MiB and a request to 4 MiB).
    codec_read_timeout_seconds: float = Field(5.0, alias="CODEC_READ_TIMEOUT_SECONDS", gt=0)
    codec_max_connections: int = Field(64, alias="CODEC_MAX_CONNECTIONS", ge=1)
    codec_max_body_bytes: int = Field(16 * 1024 * 1024, alias="CODEC_MAX_BODY_BYTES", ge=1)
    # Who may call what (server/core/auth): callers prove who they are with a
    # bearer token (a JWT signed with JWT_SECRET_FILE, HS256, or with the
    # private half of JWT_PUBLIC_KEY_FILE, ES256 or RS256) or, under mutual
    # TLS, with their certificate. Off only for benchmarks of bare speed.
    auth_enabled: bool = Field(True, alias="AUTH_ENABLED")
    jwt_secret_file: str | None = Field(None, alias="JWT_SECRET_FILE")
    jwt_public_key_file: str | None = Field(None, alias="JWT_PUBLIC_KEY_FILE")
    jwt_audience: str = Field("order-platform", alias="JWT_AUDIENCE", min_length=1)
    jwt_issuer: str | None = Field(None, alias="JWT_ISSUER")
    # Clock skew tolerated on a token's exp and nbf.
    jwt_leeway_seconds: float = Field(30.0, alias="JWT_LEEWAY_SECONDS", ge=0)
    # The token this process sends on its own calls (the worker's and the
    # front door's); re-read when the file changes, so it can be rotated.
    service_token_file: str | None = Field(None, alias="SERVICE_TOKEN_FILE")
    # Services that answer server reflection (to authenticated callers).
    reflection_services: str = Field("orders", alias="REFLECTION_SERVICES")

    # TLS on every gRPC hop: off, tls (servers prove who they are), or mtls
    # (callers too, with certificates signed by TLS_CA_FILE). TLS_CERT_FILE and
    # TLS_KEY_FILE are this process's own: served by a service, presented by
    # the worker and the front door on their calls under mtls.
    tls_mode: str = Field("off", alias="TLS_MODE", pattern="^(off|tls|mtls)$")
    tls_ca_file: str | None = Field(None, alias="TLS_CA_FILE")
    tls_cert_file: str | None = Field(None, alias="TLS_CERT_FILE")
    tls_key_file: str | None = Field(None, alias="TLS_KEY_FILE")

    # A remote Temporal cluster: TLS (with a client certificate for mTLS) and
    # an API key; the dev server of `make run` needs none of them.
    temporal_tls: bool = Field(False, alias="TEMPORAL_TLS")
    temporal_tls_ca_file: str | None = Field(None, alias="TEMPORAL_TLS_CA_FILE")
    temporal_tls_cert_file: str | None = Field(None, alias="TEMPORAL_TLS_CERT_FILE")
    temporal_tls_key_file: str | None = Field(None, alias="TEMPORAL_TLS_KEY_FILE")
    temporal_tls_server_name: str | None = Field(None, alias="TEMPORAL_TLS_SERVER_NAME")
    temporal_api_key_file: str | None = Field(None, alias="TEMPORAL_API_KEY_FILE")

    # How long a stopping server lets calls in flight finish.
    shutdown_grace_seconds: float = Field(5.0, alias="SHUTDOWN_GRACE_SECONDS", ge=0)

    @field_validator(*(f"{service}_address" for service in CALLED))
    @classmethod
    def _one_or_several_instances(cls, address: str | None) -> str | None:
        # One address, or several "ip:port" whose calls are balanced (clients/channels.py).
        if address is not None:
            channel_target(address)
        return address

    @field_validator("admission_customer_order_rate", "admission_order_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate such as '10 per 2 seconds' or '5/second'"
            ) from None
        return value

    @field_validator("worker_build_id")
    @classmethod
    def _versioned_worker_has_a_build_id(
        cls, build_id: str | None, info: ValidationInfo
    ) -> str | None:
        if info.data.get("worker_versioning") and not build_id:
            raise ValueError("WORKER_VERSIONING needs a build id (e.g. the commit)")
        return build_id

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # What repr and str show (a bound method's repr, a log line, a traceback's
        # locals): database URLs may carry passwords; SecretStr fields mask themselves.
        for name, value in super().__repr_args__():
            yield name, _masked(value) if isinstance(value, str) else value

    def port_setting(self, variable: str) -> int:
        """The port that environment variable `variable` sets, e.g. "ORDERS_METRICS_PORT"."""
        return int(getattr(self, variable.lower()))

    def port_of(self, service: str) -> int:
        """Where `service` (server/core/services.py) listens: <NAME>_PORT."""
        return self.port_setting(f"{service}_port")

    def metrics_port_of(self, process: str) -> int:
        """Where `process` (a service or the worker) serves /metrics: <NAME>_METRICS_PORT."""
        return self.port_setting(f"{process}_metrics_port")

    def nice_of(self, process: str) -> int:
        """How far `process` yields the CPU to the others: <NAME>_NICE where there is one."""
        return int(getattr(self, f"{process}_nice", 0))

    def target_of(self, service: str) -> str:
        """Where callers reach `service`: <NAME>_ADDRESS, or this machine on its port."""
        own: str | None = getattr(self, f"{service}_address")
        return own or f"127.0.0.1:{self.port_of(service)}"

    def database_url_of(self, service: str) -> str:
        """The database holding `service`'s schema (server/core/services.py)."""
        own: str | None = getattr(self, f"{service}_database_url")
        return own or self.database_url

    @cached_property
    def orders_read_url(self) -> str:
        """Where GetOrder and ListOrders read: a replica, or the orders database."""
        return self.orders_read_database_url or self.database_url_of("orders")

    def bind_host_of(self, service: str) -> str:
        """The host `service` (server/core/services.py) listens on."""
        own: str | None = getattr(self, f"{service}_bind_host")
        return own or self.bind_host

    @cached_property
    def reflection(self) -> frozenset[str]:
        """The services that answer server reflection."""
        return frozenset(n.strip() for n in self.reflection_services.split(",") if n.strip())

    def payload_keyring(self) -> Keyring:
        """The keyring of Temporal payloads; a bad one stops the process."""
        return _keyring_or_exit(
            self.payload_keys, self.payload_keys_file, "PAYLOAD_KEYS", "payload-keys.json"
        )

    def payment_method_keyring(self) -> Keyring:
        """The keyring of the card tokens the payment service keeps; a bad one stops it."""
        return _keyring_or_exit(
            self.payment_method_keys,
            self.payment_method_keys_file,
            "PAYMENT_METHOD_KEYS",
            "payment-method-keys.json",
        )


def _keyring_or_exit(
    inline: SecretStr | None, path: str | None, setting: str, development_name: str
) -> Keyring:
    try:
        return load_keyring(
            inline.get_secret_value() if inline else None,
            path,
            setting=setting,
            development_name=development_name,
        )
    except KeyringError as error:
        sys.exit(f"invalid settings:\n  {error}")


def load_settings() -> Settings:
    """Reads the environment; exits with a clear message when a value is bad."""
    try:
        return Settings()
    except ValidationError as error:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        sys.exit("invalid settings:\n" + "\n".join(lines))
