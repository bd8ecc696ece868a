"""The platform's services, and the worker that calls them: one table.

A service's name is also its package (server/<name>/), its schema
(server/migrations/<name>/), its Procfile process (`python -m server <name>`),
its development certificate (.data/tls/<name>.crt) and the prefix of its
settings: <NAME>_PORT, <NAME>_METRICS_PORT, <NAME>_BIND_HOST,
<NAME>_DATABASE_URL, and <NAME>_ADDRESS when another process calls it.

What goes per service elsewhere is read from here: the settings' defaults
and accessors (server/core/settings.py), `python -m server`, the channels the
front door and the worker open, and the dev stack's ports, certificates,
tokens and endpoint table (server/devstack/). docs/architecture.md ("Adding a service")
lists what a new service needs beyond its row; tests/unit/test_service_registry.py
fails while its settings, package, program or Procfile line are missing.

Nothing here imports the rest of the platform, so the settings can read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Process:
    """A long-running process of the platform: a certificate and a /metrics endpoint of its own."""

    name: str
    what: str  # what `--help` says it is
    metrics_port: int  # the default of <NAME>_METRICS_PORT
    # Other /metrics endpoints it serves: (the port's setting, what serves it).
    more_metrics: tuple[tuple[str, str], ...] = ()
    # The services it calls, each on a channel (and a circuit breaker) of its own.
    calls: tuple[str, ...] = ()
    # The role it calls them as (a server.core.auth.identity.Role value): its
    # development token's name and the role its certificate claims.
    role: str | None = None

    def variable(self, setting: str) -> str:
        """The environment variable of one of its settings: "PORT" -> "ORDERS_PORT"."""
        return f"{self.name.upper()}_{setting}"

    @property
    def certificate(self) -> str:
        """The name of its development certificate and key (server/devstack/certs.py)."""
        return self.name

    @property
    def metrics_variables(self) -> tuple[str, ...]:
        """The settings of every /metrics port it serves."""
        return (self.variable("METRICS_PORT"), *(setting for setting, _ in self.more_metrics))

    @property
    def port_variables(self) -> tuple[str, ...]:
        """The settings of every port it listens on."""
        return self.metrics_variables


@dataclass(frozen=True, kw_only=True)
class Service(Process):
    """A gRPC service, in a process of its own, with a schema of its own."""

    port: int  # the default of <NAME>_PORT

    @property
    def schema(self) -> str:
        return self.name

    @property
    def port_variables(self) -> tuple[str, ...]:
        return (self.variable("PORT"), *self.metrics_variables)


ORDERS = Service(
    name="orders",
    what="the front door: the order service (orders.v1.OrderService)",
    port=50051,
    metrics_port=9101,
    more_metrics=(("ORDERS_TEMPORAL_METRICS_PORT", "Temporal client"),),
    calls=("payments", "inventory", "shipping"),
    role="front-door",
)
PAYMENTS = Service(
    name="payments",
    what="the payment service (payments.v1.PaymentService)",
    port=50052,
    metrics_port=9102,
)
INVENTORY = Service(
    name="inventory",
    what="the inventory service (inventory.v1.InventoryService)",
    port=50053,
    metrics_port=9103,
)
SHIPPING = Service(
    name="shipping",
    what="the shipping service (shipping.v1.ShippingService)",
    port=50054,
    metrics_port=9104,
)
# Not a service (it serves no gRPC), but it calls them, as the front door does.
WORKER = Process(
    name="worker",
    what="the order worker: runs the order workflows and their activities",
    metrics_port=9105,
    more_metrics=(("TEMPORAL_METRICS_PORT", "Temporal SDK"),),
    calls=("payments", "inventory", "shipping"),
    role="worker",
)

SERVICES: Mapping[str, Service] = {s.name: s for s in (ORDERS, PAYMENTS, INVENTORY, SHIPPING)}
# The services and the worker.
PLATFORM_PROCESSES: Mapping[str, Process] = {**SERVICES, WORKER.name: WORKER}
# The services another process calls: their callers find them at <NAME>_ADDRESS.
CALLED: tuple[str, ...] = tuple(
    name for name in SERVICES if any(name in p.calls for p in PLATFORM_PROCESSES.values())
)
