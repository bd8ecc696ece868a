"""What the benchmark's CPU meter counts: the machine's busy cores, and the database server."""

from __future__ import annotations

import time

import asyncpg
import psutil

from bench.cpu import ORDERS, CpuMeter
from bench.database import local_server


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_phase_counts_at_least_the_cores_its_own_work_kept_busy() -> None:
    """This process alone burns a core's worth: the machine was at least that busy.

    Other processes on the machine can only add to it, never take from it.
    """
    meter = CpuMeter()
    meter.watch("bench", psutil.Process())
    started = time.monotonic()
    with meter.measuring(ORDERS):
        _spin(0.4)
    own = meter.seconds[ORDERS]["bench"] / (time.monotonic() - started)
    busy = meter.cores_busy(ORDERS)
    assert busy is not None
    assert own > 0.3
    assert busy >= 0.9 * own
    assert busy <= psutil.cpu_count()
    figures = meter.figures(orders=1, bare_workflows=0, floor_workflows=0)
    assert figures["cores_busy"] == {"per_order": busy, "machine": float(psutil.cpu_count())}


def test_a_phase_never_measured_has_no_busy_cores() -> None:
    meter = CpuMeter()
    assert meter.cores_busy(ORDERS) is None
    assert "cores_busy" not in meter.figures(orders=0, bare_workflows=0, floor_workflows=0)


async def test_the_database_server_is_found_with_the_backend_of_each_connection(
    database_url: str,
) -> None:
    """The tests' database runs on this machine (DATABASE_URL's or an embedded one)."""
    server = await local_server(database_url)
    assert server is not None
    connection = await asyncpg.connect(database_url)
    try:
        backend = await connection.fetchval("SELECT pg_backend_pid()")
        assert backend in {child.pid for child in server.children()}
        # Its work shows in the server's CPU, counted as the meter counts it.
        meter = CpuMeter()
        meter.watch("postgres", server, with_children=True)
        with meter.measuring(ORDERS):
            await connection.execute("SELECT count(*) FROM generate_series(1, 3000000)")
        assert meter.seconds[ORDERS]["postgres"] > 0.05
    finally:
        await connection.close()


async def test_a_server_reached_by_another_host_is_not_looked_for_here() -> None:
    """No connection is tried: a backend id from elsewhere would name some local process."""
    assert await local_server("postgresql://postgres@db.invalid:5432/orders") is None
