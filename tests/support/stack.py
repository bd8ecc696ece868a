"""The whole platform as real processes, for end-to-end tests.

Starts the four services and the worker with `python -m ...`, exactly as
`make run` does, on free ports, against a given Temporal server and database.
Each process writes its log to a file that a failing test can show, and
its spans, as JSON lines, to a file of its own (`traces_path`); each serves
its metrics on a free port (`metrics_url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
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

from clients.proto.inventory.v1 import inventory_pb2_grpc
from clients.proto.orders.v1 import orders_pb2_grpc
from clients.proto.payments.v1 import payments_pb2_grpc
from clients.proto.shipping.v1 import shipping_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("payments", "inventory", "shipping", "orders")
# Metrics endpoints: one per process, and the worker's Temporal SDK endpoint.
METRICS_ENDPOINTS = (*SERVICES, "worker", "temporal", "orders_temporal")


def free_port() -> int:
    with socket.socket() as sock:
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
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

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
            **self.extra_env,
        }
        return env

    def process(self, name: str) -> Process:
        if name not in self.processes:
            module = ["-m", "worker"] if name == "worker" else ["-m", "server", name]
            env = {**self.env(), "OTEL_TRACES_FILE": str(self.traces_path(name))}
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
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.ports[name]}") as channel:
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

    def channel(self, name: str) -> grpc.aio.Channel:
        if name not in self.channels:
            self.channels[name] = grpc.aio.insecure_channel(f"127.0.0.1:{self.ports[name]}")
        return self.channels[name]

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
