"""The front door knows the order workflow by its contract, not by its code.

Everything under server/ may import what the workflow exchanges
(worker/model.py) and its contract (worker/contract.py): its name, input and
messages. Nothing there imports the workflow, its saga engine or its
activities; so a change to how the saga runs never reaches the front door,
and the front door does not load the worker's code. The one exception is
server/__main__.py, the entry point of every process, whose `worker`
command runs the worker itself.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"worker", "worker.model", "worker.contract"}
# The process launcher: `python -m server worker` runs the worker (worker/main.py).
LAUNCHER = ROOT / "server" / "__main__.py"


def _imports_of(package: str, path: Path) -> set[str]:
    """The modules of `package` a source file imports, anywhere in it (function bodies too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == package:  # `from worker import contract` imports a module
                found.update(f"{package}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == package}


def _worker_imports(path: Path) -> set[str]:
    return _imports_of("worker", path)


def test_no_server_module_imports_the_workflow_or_its_activities() -> None:
    offending = {}
    for path in sorted((ROOT / "server").rglob("*.py")):
        imported = _worker_imports(path) - ALLOWED
        if path == LAUNCHER:
            imported -= {"worker.main"}
        if imported:
            offending[str(path.relative_to(ROOT))] = sorted(imported)
    assert not offending, offending


# Imports every module under server/ with the worker's own modules made
# unimportable, except what the front door may know of them.
_PROBE = """
import importlib, importlib.abc, pkgutil, sys

ALLOWED = {allowed!r}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "worker" and name not in ALLOWED:
            raise ImportError(f"server/ must not import {{name}}")
        return None

sys.meta_path.insert(0, Refuse())
import server
for module in pkgutil.walk_packages(server.__path__, "server."):
    if module.name.rsplit(".", 1)[-1] != "__main__":
        importlib.import_module(module.name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] == "worker" and m not in ALLOWED)
assert not leaked, leaked
print("ok")
"""


def test_the_server_modules_load_none_of_the_workers_code() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(allowed=sorted(ALLOWED))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# In server/orders, Temporal is reached through the gateway alone
# (server/orders/gateway.py): it starts the order's workflow, sends its updates,
# signals and queries, and turns Temporal's errors into the project's. Any
# other module there that imports from temporalio is listed here, with what
# it imports and why.
ORDERS = ROOT / "server" / "orders"
TEMPORAL_GATEWAY = ORDERS / "gateway.py"
TEMPORAL_ALLOWED = {
    # The counter of orders placed is a client interceptor, installed when
    # the client connects (server/orders/__init__.py): it sees the gateway's
    # starts go by and calls nothing itself.
    ORDERS / "metrics.py": {"temporalio.client"},
    # The sweep for abandoned orders tells Temporal out of reach (logged,
    # tried again at its next pass) from a bug, by the SDK's error type.
    ORDERS / "abandoned.py": {"temporalio.service"},
}


def _temporal_imports(path: Path) -> set[str]:
    return _imports_of("temporalio", path)


def test_only_the_gateway_talks_to_temporal_in_the_orders_service() -> None:
    assert "temporalio.client" in _temporal_imports(TEMPORAL_GATEWAY)
    offending = {}
    for path in sorted(ORDERS.rglob("*.py")):
        if path == TEMPORAL_GATEWAY:
            continue
        imported = _temporal_imports(path) - TEMPORAL_ALLOWED.get(path, set())
        if imported:
            offending[str(path.relative_to(ROOT))] = sorted(imported)
    assert not offending, offending
