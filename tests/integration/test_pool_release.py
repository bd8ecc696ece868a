"""What a connection carries back to its pool: no reset round trip, and no open transaction."""

from __future__ import annotations

import asyncpg

from server.core.database import create_pool, migrate


async def _backend_pid_and_setting(pool: asyncpg.Pool) -> tuple[int, str]:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT pg_backend_pid()"), await conn.fetchval(
            "SELECT current_setting('application_name')"
        )


async def test_a_released_connection_is_not_reset(database_url: str) -> None:
    # One connection, so the second acquire gets the first one back.
    pool = await create_pool(database_url, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'kept'")
            pid = await conn.fetchval("SELECT pg_backend_pid()")
        # Had the pool sent RESET ALL on release, the setting would be gone.
        assert await _backend_pid_and_setting(pool) == (pid, "kept")
    finally:
        await pool.close()


async def test_a_transaction_left_open_is_rolled_back_on_release(database_url: str) -> None:
    pool = await create_pool(database_url, max_size=1)
    try:
        await pool.execute("CREATE TABLE IF NOT EXISTS public.pool_release (id int)")
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute("INSERT INTO public.pool_release VALUES (1)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM public.pool_release") == 0
    finally:
        await pool.execute("DROP TABLE IF EXISTS public.pool_release")
        await pool.close()


async def test_a_pool_that_resets_sessions_resets_them(database_url: str) -> None:
    pool = await create_pool(database_url, max_size=1, reset_sessions=True)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'kept'")
            pid = await conn.fetchval("SELECT pg_backend_pid()")
        assert await _backend_pid_and_setting(pool) == (pid, "")
    finally:
        await pool.close()


async def test_migrations_leave_no_advisory_lock_behind(database_url: str) -> None:
    pool = await create_pool(database_url, max_size=1)
    try:
        await migrate(pool, "orders")
        async with pool.acquire() as conn:
            held = await conn.fetchval(
                "SELECT count(*) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
        assert held == 0
    finally:
        await pool.close()
