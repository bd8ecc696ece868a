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


def _worker_imports(path: Path) -> set[str]:
    """The worker modules a source file imports, anywhere in it (function bodies too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "worker":  # `from worker import contract` imports a module
                found.update(f"worker.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "worker"}


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
