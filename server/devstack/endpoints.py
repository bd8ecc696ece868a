"""The table printed before the stack starts: where each process listens."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from server.core.services import SERVICES, WORKER, Process
from server.core.settings import Settings
from server.devstack.urls import without_password


def describe(
    processes: Iterable[str],
    settings: Settings,
    env: Mapping[str, str],
    extra_env: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """One line per endpoint of the given Procfile processes, then how to call them."""
    temporal_port = env.get("TEMPORAL_PORT", "7233")
    ui_port = env.get("TEMPORAL_UI_PORT", "8233")
    database = "external" if env.get("DATABASE_URL") else "embedded, data in .data/postgres"
    rows: dict[str, list[tuple[str, str]]] = {
        **{
            name: [
                (name, f"{settings.bind_host_of(name)}:{settings.port_of(name)}"),
                *_metrics(service, settings),
            ]
            for name, service in SERVICES.items()
        },
        "temporal": [
            ("Temporal", f"127.0.0.1:{temporal_port}"),
            ("Temporal UI", f"http://127.0.0.1:{ui_port}"),
        ],
        "postgres": [("Postgres", f"{without_password(settings.database_url)} ({database})")],
        "codec": [
            (
                "codec",
                f"http://{settings.bind_host}:{settings.codec_server_port} (Temporal payloads)",
            ),
            ("", "for operators: Authorization: Bearer $(cat .data/auth/operator.token)"),
        ],
        "worker": [
            ("worker", f"task queue {settings.task_queue} on {settings.temporal_address}"),
            *_metrics(WORKER, settings),
        ],
    }
    lines = [
        f"  {label:<12} {where}"
        for process in processes
        for label, where in rows.get(process, [(process, "")])
    ]
    if env.get("OTEL_TRACES_FILE"):
        lines.append(f"  {'traces':<12} {env['OTEL_TRACES_FILE']}")
        lines.append(f"  {'':<12} make trace ORDER=ord_... prints an order's traces")
    if env.get("LOG_DIR"):
        lines.append(f"  {'logs':<12} {env['LOG_DIR']}/<process>.jsonl")
    lines.extend(_security(settings, extra_env or {}))
    return "\n".join(["order-platform dev stack (Ctrl-C stops it all):", *lines])


def _metrics(process: Process, settings: Settings) -> list[tuple[str, str]]:
    """The process's /metrics endpoints, its own first, then the others it serves."""
    metrics = f"http://{settings.metrics_host}"
    own = settings.metrics_port_of(process.name)
    return [
        ("", f"{metrics}:{own}/metrics"),
        *(
            ("", f"{metrics}:{settings.port_setting(setting)}/metrics ({serves})")
            for setting, serves in process.more_metrics
        ),
    ]


def _security(settings: Settings, extra_env: Mapping[str, Mapping[str, str]]) -> list[str]:
    given = {key: value for variables in extra_env.values() for key, value in variables.items()}
    if not settings.auth_enabled:
        auth = "OFF (AUTH_ENABLED=false): anyone who reaches a port may call anything"
    elif "JWT_SECRET_FILE" in given:
        operator = Path(given["JWT_SECRET_FILE"]).with_name("operator.token")
        auth = f'on; as an operator: -H "authorization: Bearer $(cat {operator})"'
    else:
        auth = "on, with the keys and tokens the environment names"
    lines = [f"  {'auth':<12} {auth}"]
    if settings.tls_mode != "off":
        folder = Path(given["TLS_CA_FILE"]).parent if "TLS_CA_FILE" in given else None
        where = f", certificates in {folder}" if folder else ""
        lines.append(f"  {'tls':<12} {settings.tls_mode}{where}")
    return lines
