"""The client library and the CLI run without the server code and its dependencies."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Imports every client module with the platform's own code and server-only
# dependencies made unimportable, as on a machine with only `./clients[cli]`
# installed (tests/clients/test_client_package.py installs it so).
_PROBE = """
import importlib, importlib.abc, sys

BLOCKED = ("server", "worker", "temporalio", "asyncpg", "pydantic_settings", "structlog", "jwt")

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"clients must not import {name}")
        return None

sys.meta_path.insert(0, Refuse())
for module in (
    "clients.orders", "clients.inventory", "clients.payments", "clients.shipping",
    "clients.sync", "clients.retry", "clients.errors", "clients.credentials",
    "clients.cli", "clients.cli.app", "clients.cli.watch", "clients.operator",
    "clients.cli.ops_commands",
):
    importlib.import_module(module)
from clients.cli.app import app
from typer.testing import CliRunner
result = CliRunner().invoke(app, ["--help"])
assert result.exit_code == 0, result.output
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not leaked, leaked
print("ok")
"""


def test_clients_import_nothing_from_server_or_worker() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_dependencies_and_the_console_script_are_declared() -> None:
    project = tomllib.loads((ROOT / "clients" / "pyproject.toml").read_text())["project"]
    client = " ".join(project["dependencies"])
    cli = " ".join(project["optional-dependencies"]["cli"])
    for needed in (
        "grpcio",
        "grpcio-status",
        "protobuf",
        "googleapis-common-protos",
        "opentelemetry-instrumentation-grpc",
        "tenacity",
    ):
        assert needed in client
    assert "typer" in cli and "rich" in cli
    assert project["scripts"]["orders"] == "clients.cli:main"
    assert (ROOT / "clients" / "py.typed").is_file()
