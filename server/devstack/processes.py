"""Runs Procfile processes under honcho.

honcho starts each process in its own process group and prefixes its output
with the process name. When any process exits, or on Ctrl-C (SIGINT) or
SIGTERM, it sends SIGTERM to every group and SIGKILL to whatever still runs
5 s later, so nothing of the stack outlives the command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer


def read_procfile(path: Path) -> dict[str, str]:
    """Process name -> shell command, in file order."""
    return dict(parse_procfile(path.read_text()).processes)


def run(
    processes: Mapping[str, str],
    *,
    cwd: Path,
    extra_env: Mapping[str, Mapping[str, str]] | None = None,
) -> int:
    """Runs the processes until one exits or a stop signal; returns honcho's exit code.

    Each inherits this process's environment, plus its own `extra_env` (its
    certificate, its token).
    """
    manager = Manager(Printer(sys.stdout))
    for name, command in processes.items():
        env = {**os.environ, **(extra_env or {}).get(name, {})}
        manager.add_process(name, command, env=env, cwd=str(cwd))
    manager.loop()
    return int(manager.returncode or 0)
