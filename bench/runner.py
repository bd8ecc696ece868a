"""One benchmark run: start everything, measure each phase, stop everything."""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from bench.changes import phase_count as changes_phases
from bench.cpu import CpuMeter, find_child
from bench.database import describe, local_server, scratch_database
from bench.machine import describe_machine, load_average
from bench.measurement import PHASE_COUNT, Measurement
from bench.options import Options
from bench.overload import Overload
from bench.overload import phase_count as overload_phases
from bench.processes import BENCH_ROOT, Child, bench_env
from bench.profiling import Profiler
from bench.progress import Phases
from bench.results import Results
from bench.stack import Platform, tree_commit
from bench.temporal_server import temporal_server
from bench.workflow_load import BareWorkflows
from server.devstack.processes import temporal_dynamic_config, temporal_sqlite_pragmas


def phase_count(options: Options) -> int:
    """How many phases the progress bar will show."""
    return (
        PHASE_COUNT
        + (1 if options.profile else 0)
        + changes_phases(options.changes)
        + overload_phases(options.overload)
    )


async def run(options: Options, phases: Phases) -> Results:
    workdir = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    dynamic_config = temporal_dynamic_config(options.tree / "Procfile")
    sqlite_pragmas = temporal_sqlite_pragmas(options.tree / "Procfile")
    meta: dict[str, Any] = {
        "started_at": datetime.now().isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "load_average_at_start": load_average(),
        "options": {
            k: v if isinstance(v, dict) else str(v) for k, v in dataclasses.asdict(options).items()
        },
        "tree": str(options.tree),
        "tree_commit": tree_commit(options.tree),
        "orders_followed_with": "WatchOrder",
        "profiled": options.profile,
        # Settings given to the platform's processes; the README's defaults otherwise.
        "platform_env": options.platform_env,
        # Instances of each of the platform's processes (--scale); the baselines run one.
        "instances": options.scale,
    }
    # A short path: the embedded Postgres puts its Unix socket in here.
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        async with (
            temporal_server(
                options.temporal, Path(scratch), dynamic_config, sqlite_pragmas
            ) as temporal,
            scratch_database(Path(scratch)) as database_url,
        ):
            address = temporal.client.service_client.config.target_host
            meta["temporal"] = {
                "mode": options.temporal,
                "address": address,
                "dynamic_config": dynamic_config,
                "sqlite_pragmas": sqlite_pragmas if options.temporal == "file" else [],
            }
            meta["database"] = describe(database_url)
            platform = Platform(
                tree=options.tree,
                logs=workdir,
                database_url=database_url,
                temporal_address=address,
                task_queue=f"orders-bench-{uuid.uuid4().hex[:8]}",
                extra_env={
                    "SHIPPING_BOOKING_SECONDS": str(options.booking_seconds),
                    # As under `make run`: every process writes its spans to one file.
                    "OTEL_TRACES_FILE": str(workdir / "traces.jsonl"),
                    **options.platform_env,
                },
                scale=options.scale,
            )
            meta["imported_from"] = platform.where_from()
            phases.log(
                f"the platform runs from {options.tree} at {meta['tree_commit'][:12]}: "
                + ", ".join(meta["imported_from"])
                + (f"; {options.scale} instances of each process" if options.scale > 1 else "")
            )
            bare_queue = f"bare-{uuid.uuid4().hex[:8]}"
            floor_queue = f"floor-{uuid.uuid4().hex[:8]}"
            # Each baseline's worker is a process of its own, as the platform's is.
            bare_workers = [
                Child(
                    name,
                    [sys.executable, "-m", "bench.bare_worker", address, queue, *flags],
                    BENCH_ROOT,
                    bench_env(),
                    workdir / f"{name}.log",
                )
                for name, queue, flags in (
                    ("bare_worker", bare_queue, []),
                    ("floor_worker", floor_queue, ["--floor"]),
                )
            ]
            profiler = Profiler(workdir / "profiles", options.tree, enabled=options.profile)
            try:
                with phases.phase("start the platform and the baselines' workers"):
                    for child in bare_workers:
                        child.start()
                    await platform.start()
                cpu = _cpu_meter(platform, bare_workers, await local_server(database_url))
                measurement = Measurement(
                    options,
                    phases,
                    platform,
                    BareWorkflows(temporal.client, bare_queue, floor_queue),
                    profiler,
                    cpu,
                )
                await measurement.warm_up()
                await measurement.baselines(half=0)
                full_stack, create_order = await measurement.full_stack()
                await measurement.baselines(half=1)
                baseline, floor, bare_update = measurement.baseline_results()
                burst = await measurement.burst()
                changes = await measurement.changes()
                reads, sizes = await measurement.reads(workdir)
                platform.check_running()
                for child in bare_workers:
                    child.check_running()
                rss = platform.rss_mib()
                overload: Overload | None = None
                if options.overload.enabled:
                    overload = await measurement.overload(full_stack, create_order)
                    platform.check_running()
            except BaseException:
                phases.log(f"failed; the processes' logs are in {workdir}")
                raise
            finally:
                for child in bare_workers:
                    child.stop()
                await platform.stop()
    meta["load_average_at_end"] = load_average()
    meta["seconds"] = round(time.perf_counter() - started, 1)
    if options.profile:
        with phases.phase("summarise and draw the profiles"):
            profiler.summarise()
    return Results(
        meta=meta,
        baseline_workflow=baseline,
        floor_workflow=floor,
        full_stack=full_stack,
        create_order=create_order,
        bare_update_with_start=bare_update,
        burst=burst,
        changes=changes,
        reads=reads,
        read_message_bytes=sizes,
        rss_mib=rss,
        cpu_ms=cpu.figures(
            full_stack.concurrent.completed,
            baseline.concurrent.completed,
            floor.concurrent.completed,
        ),
        profiles=profiler.outputs,
        overload=overload,
    )


def _cpu_meter(
    platform: Platform, bare_workers: list[Child], database: psutil.Process | None
) -> CpuMeter:
    """Watches every process of the run on this machine (the database server, embedded
    or not, when it runs here), each instance of a platform process apart."""
    meter = CpuMeter()
    for name, child in platform.children.items():
        meter.watch(name, child.pid)
    for child in bare_workers:
        meter.watch(child.name, child.pid)
    meter.watch("temporal", find_child("temporal"))
    meter.watch("postgres", database, with_children=True)
    meter.watch("bench", os.getpid())
    return meter
