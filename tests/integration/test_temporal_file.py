"""`make run`'s Temporal keeps its file as the Procfile says, and a crash loses none of it.

The server is started as the Procfile's `temporal` line configures it (the
fault suite's dev server, tests/faults/servers.py), killed without warning
and started again on the same file, as `make run` after a crash would.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus

from server.devstack.paths import PROCFILE
from server.devstack.processes import temporal_sqlite_pragmas
from tests.faults.servers import TemporalDevServer


def _journal_mode(database: Path) -> str:
    connection = sqlite3.connect(database)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    finally:
        connection.close()


def _asks_for_wal() -> bool:
    """Whether the Procfile's `temporal` line asks for SQLite's write-ahead log."""
    asked = [pragma.replace(" ", "").lower() for pragma in temporal_sqlite_pragmas(PROCFILE)]
    return "journal_mode=wal" in asked


async def test_a_workflow_started_before_a_crash_is_there_after_it(tmp_path: Path) -> None:
    server = TemporalDevServer(tmp_path)
    await server.start()
    try:
        workflow_id = f"crash-{uuid.uuid4().hex}"
        client = await Client.connect(server.address)
        # No worker polls this queue: the workflow is only stored, and stays open.
        await client.start_workflow("Anything", id=workflow_id, task_queue="nobody-polls")
        server.crash()
        await server.restart()
        client = await Client.connect(server.address)
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
    finally:
        server.stop()
    # Of the journal modes only the write-ahead log is kept in the file: it is
    # there exactly when the line asks for it, so the line's pragmas took effect.
    assert (_journal_mode(tmp_path / "temporal.db") == "wal") == _asks_for_wal()
