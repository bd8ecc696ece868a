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


def run(processes: Mapping[str, str], *, cwd: Path) -> int:
    """Runs the processes until one exits or a stop signal; returns honcho's exit code."""
    manager = Manager(Printer(sys.stdout))
    for name, command in processes.items():
        manager.add_process(name, command, env=dict(os.environ), cwd=str(cwd))
    manager.loop()
    return int(manager.returncode or 0)
