"""Connection pools, what their failures mean, and schema migrations.

Each service owns one Postgres schema named after it (`payments`, `inventory`,
...) and the versioned SQL files in `server/migrations/<service>/`. Migrations
run when a service starts: they are recorded in `<schema>.schema_migrations`,
serialised across processes by an advisory lock, and each file is applied in
its own transaction, so running them twice or from several processes at once
is safe. A file whose first line is `-- migrate: no-transaction` runs
statement by statement outside a transaction instead: what `CREATE INDEX
CONCURRENTLY` needs, so that building an index never blocks writers. Such a
file must be safe to run again (IF NOT EXISTS), since a crash can stop it
half-way.

Migrations run while older processes still serve: a migration only adds
(columns, tables, indexes built concurrently); what older code still reads or
writes is removed in a later release, once no process uses it.

`unavailable` and `bad_text` sort what asyncpg raises into the database being
away (the caller may retry) and text the database cannot store (the caller's
fault); the gRPC interceptor answers each with its status, for every service.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from server.core.waiting import waiting_for

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# One lock for every service's migrations: they are quick, and one lock
# keeps concurrent first starts (schema creation included) simple.
_MIGRATION_LOCK = 0x6F726465  # "orde"
_MIGRATION_LOCK_POLL_SECONDS = 0.05
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_NO_TRANSACTION = "-- migrate: no-transaction"
# Statements of a no-transaction file end with `;` at the end of a line.
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)

# What a database that is still starting (or briefly away) raises.
_NOT_READY = (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)
# How long one connection attempt may take: a host that drops packets would
# otherwise hold a call for asyncpg's default of a minute.
CONNECT_TIMEOUT_SECONDS = 5.0

# The database is away, restarting or overwhelmed: the same call may succeed later.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, no route, the Unix socket gone
    TimeoutError,  # connecting, or a query past command_timeout
    asyncpg.PostgresConnectionError,  # class 08, e.g. closed in the middle of a query
    asyncpg.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.OperatorInterventionError,  # class 57: shutting down, starting up, cancelled
    asyncpg.TransactionRollbackError,  # class 40: serialization failure, deadlock
)
# Text the database cannot hold: U+0000 in text, or a \u0000 escape in jsonb.
_BAD_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)


def unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot be reached now, rather than a bug."""
    if isinstance(error, _UNAVAILABLE):
        return True
    # asyncpg has no subclass for these: a pool closing, or a connection
    # that died between two queries ("connection is closed").
    return isinstance(error, asyncpg.InterfaceError) and (
        "closed" in str(error) or "closing" in str(error)
    )


def bad_text(error: BaseException) -> bool:
    """Whether `error` is the database refusing text it cannot store."""
    return isinstance(error, _BAD_TEXT)


async def create_pool(
    database_url: str,
    *,
    max_size: int = 10,
    wait_seconds: float = 60.0,
    reset_sessions: bool = False,
) -> asyncpg.Pool:
    """Opens a pool, waiting for the database to accept connections.

    Services start in any order; Postgres may come up after them.

    A connection goes back to the pool as it is, without asyncpg's reset
    query (RESET ALL, UNLISTEN, CLOSE ALL, advisory locks released): that is
    a round trip to Postgres on every release, one more per query for the
    many calls that make one, and the platform's queries leave no session
    state behind. Its only session state is an advisory lock that migrations
    and the maintenance pass release themselves, and the SETs the maintenance
    pass undoes itself; LISTEN has a connection of its own
    (server/orders/events.py). A transaction left open is still rolled back
    on release. `reset_sessions` brings the reset back, for a pool whose
    users change their session.
    """
    async for attempt in waiting_for("the database", _NOT_READY, seconds=wait_seconds):
        with attempt:
            return await asyncpg.create_pool(
                database_url,
                min_size=1,
                max_size=max_size,
                command_timeout=30,
                timeout=CONNECT_TIMEOUT_SECONDS,
                reset=None if reset_sessions else _session_kept,
            )
    raise AssertionError("unreachable")


async def _session_kept(connection: asyncpg.Connection) -> None:
    """A released connection's reset: nothing beyond asyncpg's rollback of an open transaction."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def in_transaction(self) -> bool:
        return not self.sql.startswith(_NO_TRANSACTION)

    def statements(self) -> list[str]:
        """The file's statements, one by one (for a no-transaction file)."""
        parts = (part.strip() for part in _STATEMENT_END.split(self.sql))
        return [part for part in parts if _without_comments(part)]


def _without_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def load_migrations(schema: str) -> list[Migration]:
    found = []
    for path in sorted((MIGRATIONS / schema).glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path} is not named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations of {schema} share a version: {versions}")
    return found


class MigrationError(RuntimeError):
    pass


async def migrate(pool: asyncpg.Pool, schema: str) -> list[int]:
    """Applies the schema's pending migrations; returns the versions applied."""
    migrations = load_migrations(schema)
    applied_now: list[int] = []
    async with pool.acquire() as conn:
        # Polled, not waited for: CREATE INDEX CONCURRENTLY waits for every
        # statement in progress, and one blocked on this lock would wait for it back.
        while True:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", _MIGRATION_LOCK):
                break
            await asyncio.sleep(_MIGRATION_LOCK_POLL_SECONDS)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        checksum text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            rows = await conn.fetch(f'SELECT version, checksum FROM "{schema}".schema_migrations')
            applied = {r["version"]: r["checksum"] for r in rows}
            for migration in migrations:
                if migration.version in applied:
                    if applied[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"{schema} migration {migration.version:04d}_{migration.name} "
                            "changed after it was applied; add a new migration instead"
                        )
                    continue
                if not migration.in_transaction:
                    for statement in migration.statements():
                        await conn.execute(statement)
                async with conn.transaction():
                    if migration.in_transaction:
                        await conn.execute(migration.sql)
                    await conn.execute(
                        f'INSERT INTO "{schema}".schema_migrations (version, name, checksum)'
                        " VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied_now.append(migration.version)
                log.info(
                    "migration applied",
                    schema=schema,
                    version=migration.version,
                    migration=migration.name,
                )
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now
