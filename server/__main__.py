"""`python -m server NAME` runs one service, or the codec server (`codec`)."""

from __future__ import annotations

import importlib
import sys

SERVICES = ("orders", "payments", "inventory", "shipping")


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in (*SERVICES, "codec"):
        sys.exit(f"usage: python -m server {{{','.join((*SERVICES, 'codec'))}}}")
    if sys.argv[1] == "codec":
        from server.codec_server import main as serve_codec

        serve_codec()
        return
    from server.core.service import run

    run(importlib.import_module(f"server.{sys.argv[1]}").SERVICE)


if __name__ == "__main__":
    main()
