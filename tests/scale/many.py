"""The platform with several instances of every process, against one Temporal and one Postgres.

Each service runs `count` times on ports of its own, and so does the worker;
callers name every instance of a service in one address setting
(PAYMENTS_ADDRESS=127.0.0.1:p0,127.0.0.1:p1), which their channels balance
with round_robin (clients/channels.py). The test's own channels do the same
over the front doors, or reach one instance by its name ("orders-1").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import grpc

from clients.channels import CallerCredentials, open_channel
from tests.faults.stack import CALLER_CHANNEL_OPTIONS, CallerStack
from tests.support.stack import SERVICES, Process, free_port

# What each process type serves /metrics for, beside its own port: the
# Temporal SDK of the front door and of the worker.
_SDK_METRICS = {"orders": "ORDERS_TEMPORAL_METRICS_PORT", "worker": "TEMPORAL_METRICS_PORT"}


def kind_of(name: str) -> str:
    """ "payments-1" -> "payments"."""
    return name.rpartition("-")[0]


@dataclass
class ManyStack(CallerStack):
    count: int = 2

    def __post_init__(self) -> None:
        for kind in (*SERVICES, "worker"):
            for name in self.instances(kind):
                self.ports[name] = free_port()
                self.metrics_ports[name] = free_port()
                self.metrics_ports[f"{name}-sdk"] = free_port()

    def instances(self, kind: str) -> list[str]:
        return [f"{kind}-{number}" for number in range(self.count)]

    def address(self, name: str) -> str:
        """Every instance of a service ("payments"), or one of them ("payments-1")."""
        names = self.instances(name) if name in SERVICES else [name]
        return ",".join(f"127.0.0.1:{self.ports[n]}" for n in names)

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            **{f"{kind.upper()}_ADDRESS": self.address(kind) for kind in SERVICES},
        }

    def process(self, name: str) -> Process:
        if name not in self.processes:
            kind = kind_of(name)
            module = ["-m", "worker"] if kind == "worker" else ["-m", "server", kind]
            own = {
                f"{kind.upper()}_PORT": str(self.ports[name]),
                f"{kind.upper()}_METRICS_PORT": str(self.metrics_ports[name]),
            }
            if kind in _SDK_METRICS:
                own[_SDK_METRICS[kind]] = str(self.metrics_ports[f"{name}-sdk"])
            env = {
                **self.env(),
                **self.security(kind),
                **own,
                "OTEL_TRACES_FILE": str(self.traces_path(name)),
            }
            self.processes[name] = Process(
                name, [sys.executable, *module], env, self.workdir / f"{name}.log"
            )
        return self.processes[name]

    async def start(self) -> None:
        services = [name for kind in SERVICES for name in self.instances(kind)]
        for name in (*services, *self.instances("worker")):
            self.process(name).start()
        for name in services:
            await self.wait_serving(name)

    def open_channel(self, name: str, credentials: CallerCredentials) -> grpc.aio.Channel:
        return open_channel(
            self.address(name), credentials, options=CALLER_CHANNEL_OPTIONS, traced=False
        )
