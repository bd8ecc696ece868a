"""`make run`'s Temporal keeps its file in WAL mode, and a crash loses none of its commits.

The server is started as the Procfile's `temporal` line configures it (the
fault suite's dev server, tests/faults/servers.py), killed without warning
and started again on the same file.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus

from tests.faults.servers import TemporalDevServer


def _journal_mode(database: Path) -> str:
    connection = sqlite3.connect(database)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


async def test_a_workflow_started_before_a_crash_is_there_after_it(tmp_path: Path) -> None:
    server = TemporalDevServer(tmp_path)
    await server.start()
    try:
        workflow_id = f"journal-{uuid.uuid4().hex}"
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
    assert _journal_mode(tmp_path / "temporal.db") == "wal"
