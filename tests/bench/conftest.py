"""One `make bench` run at a tiny size, changes and overload included, for every smoke test here,
and one with two of each platform process (--scale 2).

Each runs once per session: the tests only read its JSON file and its outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIZES = {
    "--concurrency": 3,
    "--workflows": 4,
    "--floor-workflows": 6,
    "--orders": 4,
    "--one-at-a-time": 2,
    "--burst": 4,
    "--read-concurrency": 4,
    "--read-seconds": 0.3,
    # One order changed during its slow charge, one changed and cancelled.
    "--changes": 2,
}
# Instances of each platform process in the scaled run.
SCALE = 2
OVERLOAD_SIZES = {
    "--overload-factors": "2,5",
    "--overload-seconds": 1,
    "--overload-customers": 5,
    # One customer's 30 calls in a second are more than its rate (10 per 2
    # seconds by default) lets in: the flood is always partly refused.
    "--flood-calls": 30,
    "--flood-seconds": 1,
    "--polite-orders": 3,
}


def bench(out: Path, *flags: str) -> str:
    """`python -m bench FLAGS --out OUT`, which must succeed; its standard output."""
    finished = subprocess.run(
        [sys.executable, "-m", "bench", *flags, "--out", str(out)],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        # Only so that a hang ends the test; the run itself takes about a minute.
        timeout=900,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-5000:]
    return finished.stdout


def document(out: Path) -> dict[str, Any]:
    written: dict[str, Any] = json.loads(out.read_text())
    written["_out"] = out
    return written


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "run.json"
    flags = ["--temporal", "memory", "--profile", "--overload"]
    flags += [str(x) for pair in (*SIZES.items(), *OVERLOAD_SIZES.items()) for x in pair]
    stdout = bench(out, *flags)
    assert "make bench" in stdout
    assert "make bench: changes" in stdout
    assert "make bench: overload" in stdout
    assert "make bench: CPU budget" in stdout
    return document(out)


@pytest.fixture(scope="session")
def scaled_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same sizes with two of each platform process; no changes, overload or profiles."""
    out = tmp_path_factory.mktemp("bench-scale") / "run.json"
    sizes = {**SIZES, "--changes": 0}
    flags = ["--temporal", "memory", "--scale", str(SCALE)]
    flags += [str(x) for pair in sizes.items() for x in pair]
    stdout = bench(out, *flags)
    assert f"make bench, {SCALE} of each platform process" in stdout
    assert f"CPU ms by process ({SCALE} instances of each added up)" in stdout
    return document(out)
