"""What every process does as it starts (server/core/process.py): its CPU priority, its heap,
its event loop."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Started as the platform starts a process, it reports what it got.
PROGRAM = """
import gc, json, os, sys, threading
from server.core.process import run, started

async def main(settings):
    seen = {}
    def report():
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=report)
    thread.start()
    thread.join()
    seen["main"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    started()
    seen["frozen"] = gc.get_freeze_count()
    return seen

print(json.dumps(run(sys.argv[1], main, metrics=False, traced=False, logs_to_file=False)))
"""


# Reports the module of the event loop it runs on; a gRPC service asks for the chosen one.
LOOP_PROGRAM = """
import asyncio, sys
from server.core.process import run

async def main(settings):
    return type(asyncio.get_running_loop()).__module__

chosen = sys.argv[2] == "service"
print(run(sys.argv[1], main, metrics=False, traced=False, logs_to_file=False, chosen_loop=chosen))
"""


def started_process(
    name: str, *args: str, program: str = PROGRAM, **env: str
) -> subprocess.CompletedProcess[str]:
    variables = {
        k: v for k, v in os.environ.items() if not k.endswith("_NICE") and k != "EVENT_LOOP"
    }
    return subprocess.run(
        [sys.executable, "-c", program, name, *args],
        cwd=ROOT,
        env={**variables, "LOG_FORMAT": "json", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def start(name: str, **env: str) -> dict[str, object]:
    done = started_process(name, **env)
    assert done.returncode == 0, done.stderr
    seen: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


pytestmark = pytest.mark.skipif(
    os.getpriority(os.PRIO_PROCESS, 0) != 0, reason="the tests themselves run niced"
)


def test_the_worker_yields_the_cpu_and_so_do_its_threads() -> None:
    seen = start("worker")
    assert seen["main"] == 10
    assert seen["thread"] == 10  # a thread it starts later


def test_worker_nice_sets_how_far() -> None:
    assert start("worker", WORKER_NICE="3")["main"] == 3
    assert start("worker", WORKER_NICE="0")["main"] == 0


def test_the_services_keep_their_priority() -> None:
    assert start("orders", WORKER_NICE="15")["main"] == 0


def loop_of(name: str, kind: str, **env: str) -> str:
    done = started_process(name, kind, program=LOOP_PROGRAM, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_services_run_on_uvloop_and_the_worker_on_asyncio() -> None:
    assert loop_of("orders", "service").startswith("uvloop")
    assert loop_of("worker", "worker").startswith("asyncio")
    assert loop_of("worker", "worker", EVENT_LOOP="uvloop").startswith("asyncio")


def test_event_loop_asyncio_puts_the_services_on_the_standard_loop() -> None:
    assert loop_of("payments", "service", EVENT_LOOP="asyncio").startswith("asyncio")


def test_an_unknown_event_loop_stops_the_service_with_the_setting_named() -> None:
    done = started_process("orders", "service", program=LOOP_PROGRAM, EVENT_LOOP="trio")
    assert done.returncode != 0
    assert "EVENT_LOOP" in done.stderr and "Traceback" not in done.stderr


def test_a_started_process_freezes_what_it_loaded() -> None:
    # Tens of thousands of objects loaded while starting, none walked by a collection again.
    frozen = start("orders")["frozen"]
    assert isinstance(frozen, int) and frozen > 10_000


@pytest.mark.parametrize(
    ("value", "said"),
    [("-5", "greater than or equal to 0"), ("40", "less than or equal to 19"), ("x", "integer")],
)
def test_a_worker_nice_out_of_range_stops_the_worker_with_the_setting_named(
    value: str, said: str
) -> None:
    done = started_process("worker", WORKER_NICE=value)
    assert done.returncode != 0
    assert "WORKER_NICE" in done.stderr and said in done.stderr
    assert "Traceback" not in done.stderr


def test_collections_are_timed_once_however_often_a_process_asks() -> None:
    import gc

    from server.core.metrics import GC_PAUSE, watch_collections

    watch_collections()
    watch_collections()
    timers = [c for c in gc.callbacks if type(c).__name__ == "_Collections"]
    assert len(timers) == 1

    def count() -> float:
        return sum(
            s.value
            for m in GC_PAUSE.collect()
            for s in m.samples
            if s.name.endswith("_count") and s.labels["generation"] == "2"
        )

    before = count()
    gc.collect()
    assert count() == before + 1


def test_a_collection_with_no_frames_left_goes_untimed_without_a_traceback() -> None:
    from server.core.metrics import _Collections

    timer = _Collections()
    code = type(timer).__call__.__code__

    def raised_inside(error: BaseException) -> bool:
        tb = error.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is code:
                return True
            tb = tb.tb_next
        return False

    # Each headroom leaves the callback a few frames fewer, as a collection
    # tipped by an allocation deep in recursion does: some are too few to
    # enter it at all (the interpreter's own refusal), none may fail inside.
    depth = len(inspect.stack(0))
    limit = sys.getrecursionlimit()
    failed_inside = []
    entered = 0
    for headroom in range(2, 40):
        try:
            sys.setrecursionlimit(depth + headroom)
            timer("start", {"generation": 0})
            timer("stop", {"generation": 0})
            entered += 1
        except RecursionError as error:
            if raised_inside(error):
                failed_inside.append(headroom)
        finally:
            sys.setrecursionlimit(limit)
    assert entered > 0
    assert not failed_inside, f"failed inside the callback with headroom {failed_inside}"
