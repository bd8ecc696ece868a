"""How many of each platform process a run starts (--scale), their names and their ports.

As under `make run SCALE=n` (server/devstack/instances.py), instance 1 of a
process has the process's own name ("orders") and instance k is "orders.k";
every instance listens on ports of its own, and the callers are told every
instance of a service in one comma-separated address, which their channels
balance over with round_robin (clients/channels.py). Unlike `make run`'s,
the ports are free ones rather than instance 1's shifted by a step, so a
`make run` on the same machine is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bench.processes import free_port

SERVICES = ("payments", "inventory", "shipping", "orders")
PROCESSES = (*SERVICES, "worker")
# Every /metrics endpoint, including the Temporal SDK's of the worker and the front door.
METRICS_ENDPOINTS = (*SERVICES, "worker", "temporal", "orders_temporal")
# The services the front door and the worker call: with several instances,
# each caller is told all of them (<NAME>_ADDRESS).
CALLED = ("payments", "inventory", "shipping")


@dataclass(frozen=True)
class Instance:
    """Instance `number` of every platform process, and the ports it listens on."""

    number: int
    # service -> its gRPC port
    ports: Mapping[str, int]
    # one of METRICS_ENDPOINTS -> its /metrics port
    metrics_ports: Mapping[str, int]

    def name(self, kind: str) -> str:
        """The instance of process `kind`: "orders" for the first, "orders.2" for the second."""
        return kind if self.number == 1 else f"{kind}.{self.number}"

    def target(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def metrics_url(self, endpoint: str) -> str:
        return f"http://127.0.0.1:{self.metrics_ports[endpoint]}/metrics"

    def port_env(self) -> dict[str, str]:
        """The port settings of its processes: each takes its own, the others are unused."""
        return {
            **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            **{f"{name.upper()}_METRICS_PORT": str(p) for name, p in self.metrics_ports.items()},
        }


def kind_of(name: str) -> str:
    """The process an instance is one of: "orders.2" -> "orders"; other names as they are."""
    return name.partition(".")[0]


def on_free_ports(scale: int, free: Callable[[], int] = free_port) -> list[Instance]:
    """`scale` instances, each port a free one and none given twice."""
    taken: set[int] = set()

    def port() -> int:
        while (found := free()) in taken:
            pass
        taken.add(found)
        return found

    return [
        Instance(
            number,
            {service: port() for service in SERVICES},
            {endpoint: port() for endpoint in METRICS_ENDPOINTS},
        )
        for number in range(1, scale + 1)
    ]


def addresses(instances: list[Instance]) -> dict[str, str]:
    """<NAME>_ADDRESS of each called service, every instance listed; none with one instance,
    whose callers find it on its port as they always have."""
    if len(instances) < 2:
        return {}
    return {
        f"{service.upper()}_ADDRESS": ",".join(i.target(service) for i in instances)
        for service in CALLED
    }
