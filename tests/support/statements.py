"""A stand-in for a connection pool that notes every statement its calls send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg


class NotedConnection:
    """One connection, offered as a repository uses a pool, noting each statement sent.

    A real pool would add statements of its own, and asyncpg looks a type's
    codec up the first time it meets it: warm a call up before counting.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.statements: list[str] = []
        self._conn = conn
        conn.add_query_logger(lambda query: self.statements.append(query.query))

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@asynccontextmanager
async def noted_connection(database_url: str) -> AsyncIterator[NotedConnection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield NotedConnection(conn)
    finally:
        await conn.close()
