"""`python -m server NAME` runs one process of the platform.

NAME is a service (orders, payments, inventory, shipping: the table in
server/core/services.py), `worker` (the order worker, as `python -m worker`),
`codec` (the codec server) or `maintenance` (one pass of database upkeep,
then exit). The container image
has this as its entry point, so its command picks the process. Each process
is also an installed program (pyproject.toml's `[project.scripts]`:
`orders-service`, `order-worker`, ...), one function of this module each.

Every process takes its settings from the environment (README, Settings);
`--help` says what the process is and stops.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from server.core import services

SERVICES = tuple(services.SERVICES)
PROCESSES = (*SERVICES, "worker", "codec", "maintenance")

WHAT = {
    **{name: process.what for name, process in services.PLATFORM_PROCESSES.items()},
    "codec": "the codec server: decodes workflow payloads for operators (decode only)",
    "maintenance": "one pass of database upkeep (order events' partitions), then exit",
}
SETTINGS = (
    "Settings come from the environment: see the README's Settings table. "
    "The process runs until SIGTERM or SIGINT, then stops gracefully."
)


def run(name: str) -> None:
    """Runs process `name` until it is stopped."""
    if name == "codec":
        from server.codec_server import main as serve_codec

        serve_codec()
        return
    if name == "worker":
        from worker.main import main as run_worker

        run_worker()
        return
    if name == "maintenance":
        from server.orders.maintenance import main as maintain

        maintain()
        return
    from server.core.service import run as serve

    serve(importlib.import_module(f"server.{name}").SERVICE)


def _program(name: str, prog: str) -> Callable[[], None]:
    """The installed program of process `name`: `--help`, or run it."""

    def main() -> None:
        argparse.ArgumentParser(prog=prog, description=WHAT[name], epilog=SETTINGS).parse_args()
        run(name)

    main.__doc__ = f"`{prog}`: {WHAT[name]}."
    return main


orders_service = _program("orders", "orders-service")
payments_service = _program("payments", "payments-service")
inventory_service = _program("inventory", "inventory-service")
shipping_service = _program("shipping", "shipping-service")
order_worker = _program("worker", "order-worker")
codec_server = _program("codec", "codec-server")
orders_maintenance = _program("maintenance", "orders-maintenance")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Runs one process of the platform.",
        epilog=SETTINGS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "name",
        choices=PROCESSES,
        metavar="NAME",
        help="; ".join(f"{name}: {what}" for name, what in WHAT.items()),
    )
    run(parser.parse_args().name)


if __name__ == "__main__":
    main()
