"""The one Temporal dev server a benchmark run measures everything against."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench.processes import venv_program

# Where the server keeps its state: a file, as `make run` does, or memory.
MODES = ("file", "memory")


@contextlib.asynccontextmanager
async def temporal_server(
    mode: str, workdir: Path, dynamic_config: list[str], sqlite_pragmas: list[str]
) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server on a free port, persisting to workdir/temporal.db in file mode.

    The SQLite pragmas apply to the file only: in memory there is none to write.
    """
    extra_args = [arg for value in dynamic_config for arg in ("--dynamic-config-value", value)]
    if mode == "file":
        extra_args += [arg for value in sqlite_pragmas for arg in ("--sqlite-pragma", value)]
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_program("temporal"),
        ip="127.0.0.1",
        dev_server_database_filename=str(workdir / "temporal.db") if mode == "file" else None,
        # Errors only: its warnings (slow calls under load) would flood the progress bar.
        dev_server_log_level="error",
        dev_server_extra_args=extra_args,
    )
    try:
        yield environment
    finally:
        await environment.shutdown()
