"""The client is a distribution of its own (clients/pyproject.toml): its wheel holds clients/
and nothing else, and installs, with the `orders` command line, into a fresh virtualenv
without the platform's code or its server-only dependencies."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
# Importable with the platform, never with the client alone.
PLATFORM_ONLY = ("server", "worker", "temporalio", "asyncpg")
# What running and building leave in clients/, and the Node.js client's packages.
LEFTOVERS = ("__pycache__", "build", "*.egg-info", "node_modules")


def _run(*command: str | Path, cwd: Path) -> str:
    # Neither this venv's PYTHONPATH nor its VIRTUAL_ENV may leak into the fresh one.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client's wheel, built from a copy of clients/ (a build in place leaves build/ there)."""
    work = tmp_path_factory.mktemp("client-wheel")
    source = work / "clients"
    # clients/node is copied: the wheel must leave it out by itself.
    shutil.copytree(CLIENTS, source, ignore=shutil.ignore_patterns(*LEFTOVERS))
    # This venv's setuptools, without build isolation: nothing is downloaded.
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", work / "dist", source,
        cwd=work,
    )  # fmt: skip
    (built,) = (work / "dist").glob("order_platform_client-*.whl")
    return built


@pytest.fixture(scope="module")
def client_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and its `cli` extra installed from the package index."""
    work = tmp_path_factory.mktemp("client-venv")
    venv = work / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=work)
    # The versions this venv tested, which pip has in its cache after make venv.
    ours = {"order-platform", "order-platform-client"}
    pins = {
        dist.metadata["Name"].lower(): dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"].lower() not in ours
    }
    constraints = work / "constraints.txt"
    constraints.write_text("".join(f"{name}=={pins[name]}\n" for name in sorted(pins)))
    _run(
        venv / "bin" / "python", "-m", "pip", "install", "--quiet",
        "--constraint", constraints, f"{wheel}[cli]",
        cwd=work,
    )  # fmt: skip
    return venv


def test_the_wheel_holds_every_module_of_clients_and_nothing_else(wheel: Path) -> None:
    sources = {
        "clients/" + relative.as_posix()
        for relative in (path.relative_to(CLIENTS) for path in CLIENTS.rglob("*"))
        if (relative.suffix in (".py", ".pyi") or relative.name == "py.typed")
        and relative.parts[0] not in ("node", "build")
        and "__pycache__" not in relative.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    packaged = {n for n in names if ".dist-info/" not in n}
    # A subpackage missing from clients/pyproject.toml's list shows here.
    assert packaged == sources
    assert "clients/py.typed" in packaged
    assert "orders = clients.cli:main" in scripts


def test_the_client_and_its_cli_install_without_the_platform(client_venv: Path) -> None:
    python = client_venv / "bin" / "python"
    # -I and a cwd outside the repository: only the venv's own packages are importable.
    probe = (
        "import importlib.util, json, clients, clients.errors, clients.orders, clients.cli\n"
        "print(json.dumps({'clients': clients.__file__, 'importable': "
        f"[m for m in {PLATFORM_ONLY!r} if importlib.util.find_spec(m)]}}))"
    )
    found = json.loads(_run(python, "-I", "-c", probe, cwd=client_venv))
    assert Path(found["clients"]).is_relative_to(client_venv)
    assert found["importable"] == []

    usage = _run(client_venv / "bin" / "orders", "--help", cwd=client_venv)
    assert usage.strip().lower().startswith("usage: orders "), usage


def test_the_platform_depends_on_this_client_and_packages_no_copy_of_it() -> None:
    platform = tomllib.loads((ROOT / "pyproject.toml").read_text())
    client = tomllib.loads((CLIENTS / "pyproject.toml").read_text())["project"]
    assert f"{client['name']}=={client['version']}" in platform["project"]["dependencies"]
    included = platform["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not [pattern for pattern in included if pattern.startswith("clients")]
    assert "orders" not in platform["project"]["scripts"]
