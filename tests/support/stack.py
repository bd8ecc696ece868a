"""The whole platform as real processes, for end-to-end tests.

Starts the services (server/core/services.py) and the worker with
`python -m ...`, exactly as `make run` does, on free ports, against a given
Temporal server and database. Each process writes its log to a file that a
failing test can show, and
its spans, as JSON lines, to a file of its own (`traces_path`); each serves
its metrics on a free port (`metrics_url`).

Authentication is on, as under `make run`: the stack makes a secret and
tokens in its work folder (and certificates, with TLS_MODE set), gives each
process its own, and its channels call as an operator unless told to call as
another role (`Stack.as_role`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.channels import CallerCredentials, open_channel
from clients.proto.inventory.v1 import inventory_pb2_grpc
from clients.proto.orders.v1 import orders_pb2_grpc
from clients.proto.payments.v1 import payments_pb2_grpc
from clients.proto.shipping.v1 import shipping_pb2_grpc
from server.core import services
from server.core.auth.identity import Role
from server.devstack.certs import files_for
from server.devstack.credentials import DevCredentials
from server.devstack.security import security_environment
from tests.support.auth import token_per_method

ROOT = Path(__file__).resolve().parents[2]
# Every service of server/core/services.py: those others call first, then their callers.
SERVICES = tuple(sorted(services.SERVICES, key=lambda name: bool(services.SERVICES[name].calls)))
# Metrics endpoints, by their setting without _METRICS_PORT: one per process
# ("orders", ..., "worker"), and the Temporal SDK's ("temporal", "orders_temporal").
METRICS_ENDPOINTS = tuple(
    setting.removesuffix("_METRICS_PORT").lower()
    for process in services.PLATFORM_PROCESSES.values()
    for setting in process.metrics_variables
)


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out to outgoing connections (Linux), else 32768."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports for the stacks' processes are picked below the kernel's ephemeral
# range: a port found free by binding to port 0 is one the kernel may hand to
# any outgoing connection (a test's, Postgres's, Temporal's) before the child
# process binds it, and the child then fails to start. Below that range only
# another pick could take it, and this process never picks a port twice.
_PICKS = range(10_000, max(10_001, _ephemeral_floor()))
_picked: set[int] = set()


def free_port() -> int:
    for _ in range(1000):
        port = random.randrange(_PICKS.start, _PICKS.stop)
        if port in _picked:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _picked.add(port)
        return port
    with socket.socket() as sock:  # the range is used up: any free port
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else None
        self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()

    def kill(self) -> None:
        """Dies without a chance to clean up, as in a crash."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Stack:
    workdir: Path
    database_url: str
    temporal_address: str
    task_queue: str = field(default_factory=lambda: f"orders-{uuid.uuid4().hex[:8]}")
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=lambda: {s: free_port() for s in SERVICES})
    metrics_ports: dict[str, int] = field(
        default_factory=lambda: {s: free_port() for s in METRICS_ENDPOINTS}
    )
    processes: dict[str, Process] = field(default_factory=dict)
    channels: dict[tuple[str, CallerCredentials], grpc.aio.Channel] = field(default_factory=dict)
    _security: dict[str, dict[str, str]] | None = None

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_TASK_QUEUE": self.task_queue,
            "LOG_FORMAT": "json",
            "SHUTDOWN_GRACE_SECONDS": "2",
            **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            **{
                f"{name.upper()}_METRICS_PORT": str(port)
                for name, port in self.metrics_ports.items()
            },
            # Spans reach their files a moment after they end.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # Sweeps for orders whose workflow was ended from outside query
            # Temporal's visibility, which the tests' many stacks share: only
            # the session's stack sweeps (tests/conftest.py).
            "ORDER_AUDIT_SECONDS": "0",
            # Tests place orders far faster than any customer would; the rules
            # of admission control are tested on a stack of their own.
            "ADMISSION_CUSTOMER_ORDER_RATE": "10000/second",
            "ADMISSION_ORDER_RATE": "10000/second",
            "ADMISSION_CUSTOMER_IN_FLIGHT": "100000",
            "ADMISSION_IN_FLIGHT": "100000",
            "ADMISSION_MAX_WAITING": "100000",
            "ADMISSION_CALLER_READS": "100000",
            "ADMISSION_CALLER_STREAMS": "100000",
            **self.extra_env,
        }
        return env

    def security(self, name: str) -> dict[str, str]:
        """What process `name` gets to prove who it is: its key files, token, certificate."""
        if self._security is None:
            self._security = security_environment(
                (*SERVICES, "worker"),
                self.env(),
                auth_dir=self.workdir / "auth",
                tls_dir=self.workdir / "tls",
            )
        return self._security.get(name, {})

    @property
    def tls_mode(self) -> str:
        return self.env().get("TLS_MODE", "off")

    @property
    def credentials_folder(self) -> DevCredentials:
        """The stack's secret and tokens (made when its first process starts)."""
        self.security("orders")
        return DevCredentials(self.workdir / "auth")

    def credentials(
        self, role: Role | None = Role.OPERATOR, customer_id: str | None = None
    ) -> CallerCredentials:
        """How a caller of `role` calls the stack: its token, and under mTLS a certificate.

        None: no credentials at all (TLS still, when the stack serves it).
        """
        token = None
        if role is not None and self.env().get("AUTH_ENABLED", "true") != "false":
            dev = self.credentials_folder
            minted = (
                dev.mint(role, subject=f"test-{role}", customer_id=customer_id)
                if role is Role.CUSTOMER_SERVICE
                else dev.token(role.value)
            )
            token = lambda: minted  # noqa: E731
        if self.tls_mode == "off":
            return CallerCredentials(token=token)
        self.security("orders")
        files = files_for(_CERTIFICATE_OF.get(role, "operator"), self.workdir / "tls")
        mutual = self.tls_mode == "mtls" and role is not None
        return CallerCredentials(
            tls=True,
            root_certificates=files.ca.read_bytes(),
            certificate_chain=files.cert.read_bytes() if mutual else None,
            private_key=files.key.read_bytes() if mutual else None,
            token=token,
        )

    def process(self, name: str) -> Process:
        if name not in self.processes:
            module = ["-m", "worker"] if name == "worker" else ["-m", "server", name]
            env = {
                **self.env(),
                **self.security(name),
                "OTEL_TRACES_FILE": str(self.traces_path(name)),
            }
            self.processes[name] = Process(
                name, [sys.executable, *module], env, self.workdir / f"{name}.log"
            )
        return self.processes[name]

    def traces_path(self, name: str) -> Path:
        """The file where process `name` writes its spans (server/core/telemetry.py)."""
        return self.workdir / f"{name}.traces.jsonl"

    def metrics_url(self, name: str) -> str:
        """/metrics of a process, or "temporal" for the worker's Temporal SDK metrics."""
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    async def start(self) -> None:
        for name in (*SERVICES, "worker"):
            self.process(name).start()
        await asyncio.gather(*(self.wait_serving(name) for name in SERVICES))

    async def wait_serving(self, name: str, within: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        # Health checks need no token; under TLS the handshake needs the CA (and a certificate).
        credentials = self.credentials()
        async with open_channel(
            f"127.0.0.1:{self.ports[name]}", credentials, traced=False
        ) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                process = self.processes[name].popen
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.processes[name].log}")
                try:
                    response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{name} not serving:\n{self.processes[name].log}")
                await asyncio.sleep(0.1)

    def channel(self, name: str, credentials: CallerCredentials | None = None) -> grpc.aio.Channel:
        """A channel to service `name`, as an operator unless other credentials are given."""
        credentials = credentials or self.operator
        if (name, credentials) not in self.channels:
            self.channels[name, credentials] = self.open_channel(name, credentials)
        return self.channels[name, credentials]

    def open_channel(self, name: str, credentials: CallerCredentials) -> grpc.aio.Channel:
        return open_channel(f"127.0.0.1:{self.ports[name]}", credentials, traced=False)

    def permitted_channel(self, name: str) -> grpc.aio.Channel:
        """A channel whose every call carries the token of a role the table lets make it."""
        key = (name, self.unchecked)
        if key not in self.channels:
            dev = self.credentials_folder
            tokens = {role: dev.token(role.value) for role in _CERTIFICATE_OF if role}
            self.channels[key] = open_channel(
                f"127.0.0.1:{self.ports[name]}",
                self.unchecked,
                interceptors=token_per_method(tokens),
                traced=False,
            )
        return self.channels[key]

    @functools.cached_property
    def unchecked(self) -> CallerCredentials:
        """No token; an operator's certificate under mTLS (the handshake wants one)."""
        return dataclasses.replace(self.credentials(Role.OPERATOR), token=None)

    @functools.cached_property
    def operator(self) -> CallerCredentials:
        return self.credentials(Role.OPERATOR)

    def as_role(self, role: Role | None, customer_id: str | None = None) -> Callers:
        """Stubs that call as `role` (None: with no credentials)."""
        return Callers(self, self.credentials(role, customer_id))

    @property
    def orders(self) -> orders_pb2_grpc.OrderServiceStub:
        return orders_pb2_grpc.OrderServiceStub(self.channel("orders"))

    @property
    def payments(self) -> payments_pb2_grpc.PaymentServiceStub:
        return payments_pb2_grpc.PaymentServiceStub(self.channel("payments"))

    @property
    def inventory(self) -> inventory_pb2_grpc.InventoryServiceStub:
        return inventory_pb2_grpc.InventoryServiceStub(self.channel("inventory"))

    @property
    def shipping(self) -> shipping_pb2_grpc.ShippingServiceStub:
        return shipping_pb2_grpc.ShippingServiceStub(self.channel("shipping"))

    async def stop(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()
        for process in reversed(list(self.processes.values())):
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.log[-4000:]}" for p in self.processes.values())


# The certificate each role calls with under mTLS (server/devstack/certs.py).
_CERTIFICATE_OF: dict[Role | None, str] = {
    Role.OPERATOR: "operator",
    Role.WORKER: "worker",
    Role.FRONT_DOOR: "orders",
}


@dataclass
class Callers:
    """Stubs of the four services that call with one set of credentials."""

    stack: Stack
    credentials: CallerCredentials

    @property
    def orders(self) -> orders_pb2_grpc.OrderServiceStub:
        return orders_pb2_grpc.OrderServiceStub(self.stack.channel("orders", self.credentials))

    @property
    def payments(self) -> payments_pb2_grpc.PaymentServiceStub:
        return payments_pb2_grpc.PaymentServiceStub(
            self.stack.channel("payments", self.credentials)
        )

    @property
    def inventory(self) -> inventory_pb2_grpc.InventoryServiceStub:
        return inventory_pb2_grpc.InventoryServiceStub(
            self.stack.channel("inventory", self.credentials)
        )

    @property
    def shipping(self) -> shipping_pb2_grpc.ShippingServiceStub:
        return shipping_pb2_grpc.ShippingServiceStub(
            self.stack.channel("shipping", self.credentials)
        )


@contextlib.asynccontextmanager
async def running_stack(
    workdir: Path, database_url: str, temporal_address: str, **env: str
) -> AsyncIterator[Stack]:
    """A started stack, stopped on the way out; `env` adds settings for its processes."""
    stack = Stack(workdir, database_url, temporal_address, extra_env=env)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()
