"""`make run SCALE=n`: n instances of each service and of the worker, on one machine.

Instance 1 is the Procfile's process as it is; instance k (2..n) is named
"orders.k" and listens on every port of instance 1 plus (k-1) * PORT_STEP:
the second front door on 50151, its metrics on 9201, and so on. Callers are
told every instance of each service (PAYMENTS_ADDRESS=127.0.0.1:50052,
127.0.0.1:50152), which their channels balance over with round_robin. One
Temporal and one Postgres serve them all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from server.core.services import CALLED, PLATFORM_PROCESSES, SERVICES
from server.core.settings import Settings

PORT_STEP = 100
# The port settings of each process that scales (the services and the
# worker), each shifted for instances 2..n.
PORTS = {name: process.port_variables for name, process in PLATFORM_PROCESSES.items()}


@dataclass
class Scaled:
    processes: dict[str, str]  # name -> command, instance 1 under its own name
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # per added instance
    shared_env: dict[str, str] = field(default_factory=dict)  # for every process
    lines: list[str] = field(default_factory=list)  # where the added instances listen


def scale(
    procfile: Mapping[str, str], settings: Settings, env: Mapping[str, str], count: int
) -> Scaled:
    """`count` instances of every scaled process in `procfile`."""
    scaled = Scaled(dict(procfile))
    if count < 2:
        return scaled
    for kind, command in procfile.items():
        if kind not in PORTS:
            continue
        for number in range(2, count + 1):
            name = f"{kind}.{number}"
            scaled.processes[name] = command
            scaled.env[name] = {
                setting: str(settings.port_setting(setting) + (number - 1) * PORT_STEP)
                for setting in PORTS[kind]
            }
            where = ", ".join(f"{s}={v}" for s, v in scaled.env[name].items())
            scaled.lines.append(f"  {name:<12} {where}")
    # The services whose callers are told where every instance listens.
    for kind in CALLED:
        setting = SERVICES[kind].variable("ADDRESS")
        if kind in procfile and not env.get(setting):
            host = _reachable(settings.bind_host_of(kind))
            port = settings.port_of(kind)
            scaled.shared_env[setting] = ",".join(
                f"{host}:{port + n * PORT_STEP}" for n in range(count)
            )
    return scaled


def _reachable(bind_host: str) -> str:
    """An IP address callers on this machine reach a service bound to `bind_host` on."""
    try:
        address = ipaddress.ip_address(bind_host)
    except ValueError:
        return "127.0.0.1"  # a host name: lists of addresses name IPs
    return "127.0.0.1" if address.is_unspecified else bind_host
