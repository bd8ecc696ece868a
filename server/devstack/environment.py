"""What the stack's processes inherit beyond the caller's environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from server.devstack.paths import DATA_DIR


def stack_environment(base: Mapping[str, str], *, interactive: bool) -> dict[str, str]:
    """Variables to set for the stack; values the caller set explicitly win."""
    # The Procfile says `python` and `temporal`: let them be this venv's, even
    # when it is not activated (`.venv/bin/python -m server.devstack`).
    bindir = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in (bindir, base.get("PATH", "")) if p)
    env = {
        "PATH": path,
        # Children write into honcho's pipes; unbuffered, lines appear at once.
        "PYTHONUNBUFFERED": "1",
        # The services and the worker find the Temporal that the Procfile starts.
        "TEMPORAL_ADDRESS": f"127.0.0.1:{base.get('TEMPORAL_PORT', '7233')}",
        # honcho kills what is still running 5 s after Ctrl-C: finish before that.
        "SHUTDOWN_GRACE_SECONDS": "3",
        # Every process appends its spans here, for `python -m server.devstack.traces`,
        # and its log as JSON lines to LOG_DIR/<process>.jsonl, to search.
        "OTEL_TRACES_FILE": str(DATA_DIR / "traces.jsonl"),
        "LOG_DIR": str(DATA_DIR / "logs"),
    }
    if interactive:
        # Behind honcho's pipes the services would choose JSON logs; a person reads these.
        env["LOG_FORMAT"] = "console"
    return {name: value for name, value in env.items() if name == "PATH" or name not in base}
