"""The table of services (server/core/services.py) agrees with everything that goes per service.

A service added to the table but not to its settings, its package, the
Procfile, `python -m server` or the README, or added to one of those and not
to the table, fails here. docs/architecture.md, "Adding a service", lists the steps.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

from server.__main__ import PROCESSES as RUNNABLE
from server.__main__ import WHAT
from server.core import services
from server.core.auth.identity import Role
from server.core.settings import Settings
from server.devstack.endpoints import describe
from server.devstack.paths import PROCFILE
from server.devstack.processes import read_procfile
from server.devstack.security import security_environment

ROOT = Path(__file__).resolve().parents[2]
SERVICES = list(services.SERVICES.values())
PROCESSES = list(services.PLATFORM_PROCESSES.values())
# Environment variable -> (field name, field) of every setting.
SETTINGS = {field.alias: (name, field) for name, field in Settings.model_fields.items()}


def _setting(variable: str) -> object:
    """The default of the setting read from `variable`; fails if there is none."""
    assert variable in SETTINGS, f"server/core/settings.py has no setting {variable}"
    name, field = SETTINGS[variable]
    # Settings.port_of, target_of and the like find a service's settings by name.
    assert name == variable.lower(), f"{variable} is read into {name}, not {variable.lower()}"
    return field.default


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_has_its_settings(service: services.Service) -> None:
    assert _setting(service.variable("PORT")) == service.port
    assert _setting(service.variable("BIND_HOST")) is None
    assert _setting(service.variable("DATABASE_URL")) is None
    if service.name in services.CALLED:
        assert _setting(service.variable("ADDRESS")) is None
        assert Settings().target_of(service.name) == f"127.0.0.1:{service.port}"


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
def test_each_process_has_its_metrics_ports(process: services.Process) -> None:
    assert _setting(process.variable("METRICS_PORT")) == process.metrics_port
    for variable in process.metrics_variables:
        assert isinstance(_setting(variable), int)


def test_every_per_service_setting_belongs_to_a_registered_process() -> None:
    hosts = {v.removesuffix("_BIND_HOST") for v in SETTINGS if v.endswith("_BIND_HOST")}
    assert hosts - {""} == {s.name.upper() for s in SERVICES}
    metrics = {v for v in SETTINGS if v.endswith("_METRICS_PORT")}
    assert metrics == {v for p in PROCESSES for v in p.metrics_variables}


def test_ports_and_callers_are_consistent() -> None:
    ports = [p.metrics_port for p in PROCESSES] + [s.port for s in SERVICES]
    assert len(ports) == len(set(ports)), "two processes share a default port"
    for process in PROCESSES:
        assert set(process.calls) <= set(services.SERVICES), process.name
        assert (process.role is None) == (not process.calls), process.name
        if process.role is not None:
            Role(process.role)  # a role the platform knows


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_has_its_package_and_schema(service: services.Service) -> None:
    spec = importlib.import_module(f"server.{service.name}").SERVICE
    assert spec.name == service.name
    assert list((ROOT / "server" / "migrations" / service.schema).glob("*.sql"))


def test_python_m_server_and_the_installed_programs_run_every_service() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for service in SERVICES:
        assert service.name in RUNNABLE and service.name in WHAT
        program = f"{service.name}-service"
        assert scripts.get(program) == f"server.__main__:{service.name}_service", program


def test_the_dev_stack_starts_every_process() -> None:
    procfile = read_procfile(PROCFILE)
    for process in PROCESSES:
        if process is services.WORKER:
            expected = "python -m worker"
        else:
            expected = f"python -m server {process.name}"
        assert procfile.get(process.name) == expected, f"Procfile: {process.name}: {expected}"
    started = {cmd.split()[-1] for cmd in procfile.values() if cmd.startswith("python -m server ")}
    assert started <= set(RUNNABLE)


def test_the_dev_stack_gives_each_process_its_credentials_and_lists_its_ports(
    tmp_path: Path,
) -> None:
    names = list(read_procfile(PROCFILE))
    extra = security_environment(
        names, {"TLS_MODE": "tls"}, auth_dir=tmp_path / "auth", tls_dir=tmp_path / "tls"
    )
    for process in PROCESSES:
        own = extra.get(process.name, {})
        assert Path(own.get("TLS_CERT_FILE", "")).name == f"{process.certificate}.crt", own
        assert ("SERVICE_TOKEN_FILE" in own) == bool(process.calls), process.name
    table = describe(names, Settings(), {})
    for service in SERVICES:
        assert f"  {service.name:<12} 127.0.0.1:{service.port}\n" in table
    for process in PROCESSES:
        assert f":{process.metrics_port}/metrics" in table


def test_the_readme_says_where_each_service_listens() -> None:
    readme = (ROOT / "README.md").read_text()
    for service in SERVICES:
        row = f"| 127.0.0.1:{service.port} | `{service.variable('PORT')}` |"
        assert row in readme, f"README.md, Where things listen, has no row ending {row}"
