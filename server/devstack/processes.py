"""Runs Procfile processes under honcho.

honcho starts each process in its own process group and prefixes its output
with the process name. When any process exits, or on Ctrl-C (SIGINT) or
SIGTERM, it sends SIGTERM to every group and SIGKILL to whatever still runs
5 s later, so nothing of the stack outlives the command.
"""

from __future__ import annotations

import itertools
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer


def read_procfile(path: Path) -> dict[str, str]:
    """Process name -> shell command, in file order."""
    return dict(parse_procfile(path.read_text()).processes)


def _temporal_values(procfile: Path, flag: str) -> list[str]:
    """The values of `flag` on the Procfile's `temporal` line, in order."""
    words = shlex.split(read_procfile(procfile).get("temporal", ""))
    return [value for option, value in itertools.pairwise(words) if option == flag]


def temporal_dynamic_config(procfile: Path) -> list[str]:
    """The `--dynamic-config-value` settings on the Procfile's `temporal` line.

    Read rather than copied, so that every Temporal server the project starts
    for itself (the benchmark's, the fault suite's, the tests') runs as
    `make run`'s does.
    """
    return _temporal_values(procfile, "--dynamic-config-value")


def temporal_dynamic_config_flags(procfile: Path) -> list[str]:
    """The same settings as arguments of `temporal server start-dev`."""
    return [
        word
        for value in temporal_dynamic_config(procfile)
        for word in ("--dynamic-config-value", value)
    ]


def temporal_sqlite_pragmas(procfile: Path) -> list[str]:
    """The `--sqlite-pragma` settings on the Procfile's `temporal` line.

    How a server that keeps its state in a file writes it; a server kept in
    memory takes none. Read for the same reason as the dynamic config: the
    benchmark and the fault suite keep theirs in a file, as `make run` does.
    """
    return _temporal_values(procfile, "--sqlite-pragma")


def temporal_sqlite_pragma_flags(procfile: Path) -> list[str]:
    """The same settings as arguments of `temporal server start-dev`."""
    return [
        word for value in temporal_sqlite_pragmas(procfile) for word in ("--sqlite-pragma", value)
    ]


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
