"""Every program the platform and its client install runs: `--help` says what it is, and
starts nothing."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support.binaries import venv_binary

ROOT = Path(__file__).resolve().parents[2]
# The platform's programs, and `orders`, the client's (clients/pyproject.toml).
SCRIPTS = {
    program: target
    for pyproject in (ROOT / "pyproject.toml", ROOT / "clients" / "pyproject.toml")
    for program, target in tomllib.loads(pyproject.read_text())["project"]["scripts"].items()
}


@pytest.mark.parametrize("program", sorted(SCRIPTS))
def test_each_installed_program_answers_help(program: str) -> None:
    done = subprocess.run(
        [venv_binary(program), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    # argparse's usage line, or the CLI's (rich) one.
    usage = done.stdout.strip().splitlines()[0].strip()
    assert usage.lower().startswith(f"usage: {program} "), done.stdout


def test_every_process_of_the_platform_has_a_program() -> None:
    from server.__main__ import PROCESSES

    programs = {target.partition(":")[0] for target in SCRIPTS.values()}
    assert programs == {"server.__main__", "clients.cli"}
    assert len(SCRIPTS) == len(PROCESSES) + 1  # and the orders CLI
