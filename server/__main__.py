"""`python -m server NAME` runs one process of the platform.

NAME is a service (orders, payments, inventory, shipping), `worker` (the
order worker, as `python -m worker`), `codec` (the codec server) or
`maintenance` (one pass of database upkeep, then exit). The container image
has this as its entry point, so its command picks the process.
"""

from __future__ import annotations

import importlib
import sys

SERVICES = ("orders", "payments", "inventory", "shipping")
PROCESSES = (*SERVICES, "worker", "codec", "maintenance")


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in PROCESSES:
        sys.exit(f"usage: python -m server {{{','.join(PROCESSES)}}}")
    name = sys.argv[1]
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
    from server.core.service import run

    run(importlib.import_module(f"server.{name}").SERVICE)


if __name__ == "__main__":
    main()
