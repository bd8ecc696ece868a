"""`orders`, the platform's command line for people (and for scripts, with `--json`)."""

from clients.cli.app import main

__all__ = ["main"]
