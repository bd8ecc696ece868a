"""The platform under test: its own Temporal, its own Postgres, the four services and the worker.

The services and the worker are started by `tests.support.stack.Stack`, as
`make run` starts them; this module adds the two servers the suite may crash,
and channels that notice a restarted server quickly.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from clients.channels import CallerCredentials, open_channel
from tests.faults.servers import EmbeddedPostgres, TemporalDevServer
from tests.support.stack import Stack

# gRPC waits up to two minutes between reconnection attempts to a server that
# went away; the suite's callers try again within a second, so that the time
# to recover it reports is the platform's, not its own channels' backoff.
CALLER_CHANNEL_OPTIONS = [
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass
class CallerStack(Stack):
    """A Stack whose channels, the suite's own, reconnect quickly."""

    def open_channel(self, name: str, credentials: CallerCredentials) -> grpc.aio.Channel:
        return open_channel(
            f"127.0.0.1:{self.ports[name]}",
            credentials,
            options=CALLER_CHANNEL_OPTIONS,
            traced=False,
        )


@dataclass
class Platform:
    temporal: TemporalDevServer
    postgres: EmbeddedPostgres
    stack: CallerStack

    def logs_folder(self) -> Path:
        return self.stack.workdir


@contextlib.asynccontextmanager
async def running_platform(workdir: Path, **env: str) -> AsyncIterator[Platform]:
    """Starts everything in `workdir` (logs included); stops it all on the way out."""
    temporal = TemporalDevServer(workdir)
    postgres = EmbeddedPostgres(workdir)
    stack: CallerStack | None = None
    try:
        await temporal.start()
        await postgres.start()
        stack = CallerStack(workdir, postgres.url, temporal.address, extra_env=env)
        await stack.start()
        yield Platform(temporal, postgres, stack)
    finally:
        if stack is not None:
            await stack.stop()
        temporal.stop()
        postgres.stop()
