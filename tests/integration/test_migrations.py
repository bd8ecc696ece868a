"""Schema migrations: versioned, recorded, safe to run twice and concurrently."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from server.core import database, services
from server.core.database import MigrationError, create_pool, load_migrations, migrate
from tests.support.database import scratch_database

SCHEMAS = tuple(service.schema for service in services.SERVICES.values())


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=12)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def fresh_pool(tmp_path) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a database no service has touched yet."""
    async with scratch_database(tmp_path) as url:
        pool = await create_pool(url, max_size=12)
        yield pool
        await pool.close()


async def test_every_service_migrates_concurrently_and_twice(fresh_pool: asyncpg.Pool) -> None:
    # Every service, each started twice at the same moment, on a fresh database.
    pool = fresh_pool
    results = await asyncio.gather(*(migrate(pool, s) for s in SCHEMAS * 2))
    for schema in SCHEMAS:
        applied = [r for s, r in zip(SCHEMAS * 2, results, strict=True) if s == schema]
        expected = [m.version for m in load_migrations(schema)]
        # Whichever ran first applied everything; the other found nothing to do.
        assert sorted(applied, key=len) == [[], expected]
        rows = await pool.fetch(f"SELECT version FROM {schema}.schema_migrations ORDER BY 1")
        assert [r["version"] for r in rows] == expected
    assert await asyncio.gather(*(migrate(pool, s) for s in SCHEMAS)) == [[]] * len(SCHEMAS)


async def test_a_changed_migration_is_refused(
    pool: asyncpg.Pool, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = f"scratch_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / schema
    folder.mkdir()
    (folder / "0001_first.sql").write_text(f"CREATE TABLE {schema}.things (id int);")
    monkeypatch.setattr(database, "MIGRATIONS", tmp_path)
    assert await migrate(pool, schema) == [1]

    (folder / "0002_second.sql").write_text(f"ALTER TABLE {schema}.things ADD name text;")
    assert await migrate(pool, schema) == [2]

    (folder / "0001_first.sql").write_text(f"CREATE TABLE {schema}.things (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(pool, schema)


async def test_a_failing_migration_leaves_nothing_half_done(
    pool: asyncpg.Pool, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = f"scratch_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / schema
    folder.mkdir()
    (folder / "0001_broken.sql").write_text(
        f"CREATE TABLE {schema}.a (id int); CREATE TABLE {schema}.a (id int);"
    )
    monkeypatch.setattr(database, "MIGRATIONS", tmp_path)
    with pytest.raises(asyncpg.DuplicateTableError):
        await migrate(pool, schema)
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.schema_migrations") == 0
    assert await pool.fetchval("SELECT to_regclass($1)", f"{schema}.a") is None
