"""The platform under test: its four services and its worker as real processes.

They are started the way `make run` and the end-to-end tests start them
(`python -m server NAME`, `python -m worker`), but from any checkout of the
project (`tree`): its directory is their working directory and their
PYTHONPATH, ahead of the editable install of the benchmark's own checkout,
so an older commit can be measured with the current benchmark.

With `scale` above 1, each runs that many times (bench/instances.py), as
under `make run SCALE=n`, against the same Temporal and Postgres.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench.instances import PROCESSES, SERVICES, Instance, addresses, on_free_ports
from bench.processes import Child, stop_together, wait_serving
from clients.channels import CallerCredentials, open_channel
from clients.proto.inventory.v1 import inventory_pb2_grpc
from clients.proto.orders.v1 import orders_pb2_grpc
from server.devstack.credentials import DevCredentials, ensure_credentials

# The processes that call other services, and the token each sends, as under `make run`.
SERVICE_TOKENS = {"orders": "front-door", "worker": "worker"}
# Checked in a child started exactly like the platform's processes.
_WHERE_FROM = "import server, worker; print(server.__file__); print(worker.__file__)"


def tree_commit(tree: Path) -> str:
    """The commit checked out in `tree`, with `+changes` when its files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tree), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


@dataclass
class Platform:
    tree: Path
    logs: Path
    database_url: str
    temporal_address: str
    task_queue: str
    extra_env: dict[str, str] = field(default_factory=dict)
    # How many instances of each process (--scale).
    scale: int = 1
    children: dict[str, Child] = field(default_factory=dict)
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Authentication is on, as in production: the platform checks tokens
        # signed with a secret made for this run, and the benchmark's callers
        # send an operator's token.
        self.credentials: DevCredentials = ensure_credentials(self.logs / "auth")
        self.instances: list[Instance] = on_free_ports(self.scale)

    def env(self, name: str | None = None, instance: Instance | None = None) -> dict[str, str]:
        """The environment of the platform's process `name` (of any of them when None),
        in `instance` (the first when None)."""
        token = SERVICE_TOKENS.get(name or "")
        return {
            **os.environ,
            # The tree's modules win over the editable install of the benchmark's checkout.
            "PYTHONPATH": str(self.tree),
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.database_url,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_TASK_QUEUE": self.task_queue,
            "LOG_FORMAT": "json",
            "SHUTDOWN_GRACE_SECONDS": "2",
            "JWT_SECRET_FILE": str(self.credentials.secret_file),
            **({"SERVICE_TOKEN_FILE": str(self.credentials.token_file(token))} if token else {}),
            **(instance or self.instances[0]).port_env(),
            **addresses(self.instances),
            **self.extra_env,
        }

    def where_from(self) -> list[str]:
        """The files `server` and `worker` are imported from in the platform's processes."""
        result = subprocess.run(
            [sys.executable, "-c", _WHERE_FROM],
            cwd=self.tree,
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
        )
        files = result.stdout.split()
        outside = [f for f in files if not Path(f).resolve().is_relative_to(self.tree.resolve())]
        if outside:
            raise SystemExit(f"the platform would not run from {self.tree}: {outside}")
        return files

    async def start(self) -> None:
        for instance in self.instances:
            for kind in PROCESSES:
                name = instance.name(kind)
                module = ["-m", "worker"] if kind == "worker" else ["-m", "server", kind]
                child = Child(
                    name,
                    [sys.executable, *module],
                    self.tree,
                    self.env(kind, instance),
                    self.logs / f"{name}.log",
                )
                self.children[name] = child
                child.start()
        await asyncio.gather(
            *(
                wait_serving(instance.target(kind), self.children[instance.name(kind)])
                for instance in self.instances
                for kind in SERVICES
            )
        )

    def target(self, name: str) -> str:
        """Where service `name` listens: every instance's address, separated by commas."""
        return ",".join(instance.target(name) for instance in self.instances)

    def metrics_urls(self, endpoint: str) -> list[str]:
        """The /metrics URL of `endpoint` (bench/instances.py) in every instance."""
        return [instance.metrics_url(endpoint) for instance in self.instances]

    def children_of(self, kind: str) -> list[Child]:
        """The started instances of process `kind`."""
        names = (instance.name(kind) for instance in self.instances)
        return [self.children[name] for name in names if name in self.children]

    def channel(self, name: str) -> grpc.aio.Channel:
        if name not in self.channels:
            self.channels[name] = open_channel(self.target(name), self.caller(), traced=False)
        return self.channels[name]

    def caller(self) -> CallerCredentials:
        """How the benchmark calls: as an operator, with a token signed for this run."""
        operator = self.credentials.token("operator")
        return CallerCredentials(token=lambda: operator)

    @property
    def orders(self) -> orders_pb2_grpc.OrderServiceStub:
        return orders_pb2_grpc.OrderServiceStub(self.channel("orders"))

    @property
    def inventory(self) -> inventory_pb2_grpc.InventoryServiceStub:
        return inventory_pb2_grpc.InventoryServiceStub(self.channel("inventory"))

    def check_running(self) -> None:
        for child in self.children.values():
            child.check_running()

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each instance of each process, by its name ("orders.2")."""
        return {name: child.rss_mib() for name, child in self.children.items()}

    async def stop(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()
        # The front doors first, the workers before the services they call.
        for kind in ("orders", "worker", "shipping", "inventory", "payments"):
            stop_together(self.children_of(kind))
