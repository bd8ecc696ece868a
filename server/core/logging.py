"""Structured logs: one JSON object per line, or a readable line in a terminal.

Every record carries a timestamp, its level, the service name and, inside a
traced operation, the trace and span ids, so a log line can be joined with its
trace. `order_id` is there wherever the code knows it: the gRPC interceptor
binds it for the call, workflow and activity records take it from their
workflow id. Records from the standard `logging` module (grpc, temporalio,
asyncpg, the workflow and activity loggers) go through the same pipeline.

With `log_file` (LOG_DIR in the settings), the process also appends its JSON
lines to that file, whatever format the terminal shows.

No secrets: values under secret keys are replaced, and a `payment_token`
written into free text (a repr in a message or a traceback) is masked in the
rendered line.

No line grows with what a caller sends: the interceptor clips the order id
it binds, and every text value of a record is clipped to MAX_VALUE_BYTES
here, whatever wrote it (server/core/clip.py).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

import structlog
from opentelemetry import trace

from server.core.clip import clip
from server.core.settings import Settings

# Keys never written to a log, whatever a caller passes in.
_SECRET_KEYS = frozenset({"payment_token", "token", "password", "authorization"})
# `payment_token='tok_x'`, `"payment_token": "tok_x"`, `payment_token: "tok_x"`,
# also with the quotes escaped, as inside a JSON string.
_SECRET_IN_TEXT = re.compile(r"""(payment_token\\?["']?\s*[:=]\s*\\?["']?)([^"'\\,\s)}]+)""")
# Room for an SDK's message or an error's text, but not for a caller's megabytes.
MAX_VALUE_BYTES = 2048
# Order ids (server/orders/placing.py order_id_for) at the start of a workflow id.
_ORDER_ID = re.compile(r"^ord_[0-9a-f]{32}")
# What the Temporal workflow and activity loggers say about their context.
_TEMPORAL_KEYS = ("workflow_id", "workflow_type", "run_id", "activity_type", "attempt")


def log_file(settings: Settings, service: str) -> Path | None:
    """Where a process appends its JSON log lines, if anywhere."""
    return Path(settings.log_dir) / f"{service}.jsonl" if settings.log_dir else None


def order_id_in(workflow_id: str) -> str | None:
    """The order a workflow (or its child, `ord_..-suffix`) is about, if any."""
    match = _ORDER_ID.match(workflow_id)
    return match.group(0) if match else None


def _add_trace_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def _lift_temporal_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Flattens the workflow/activity context the SDK's loggers add; finds the order."""
    for key in ("temporal_workflow", "temporal_activity"):
        info = event.pop(key, None)
        if isinstance(info, dict):
            for name in _TEMPORAL_KEYS:
                if name in info:
                    event.setdefault(name, info[name])
    workflow_id = event.get("workflow_id")
    if "order_id" not in event and isinstance(workflow_id, str):
        order_id = order_id_in(workflow_id)
        if order_id:
            event["order_id"] = order_id
    return event


def _drop_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in _SECRET_KEYS & event.keys():
        event[key] = "[redacted]"
    return event


def _clip_values(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = clip(value, MAX_VALUE_BYTES)
    return event


def _mask_secrets_in_text(_: Any, __: str, line: str) -> str:
    return _SECRET_IN_TEXT.sub(r"\1[redacted]", line)


def _drop_span_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    # A person reading the terminal wants the trace id; the span id is for machines.
    event.pop("span_id", None)
    return event


def _shared(service: str) -> list[Any]:
    """What every record goes through, from structlog or from stdlib logging."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_context,
        _lift_temporal_context,
        _drop_secrets,
        _clip_values,
        lambda _, __, event: {"service": service, **event},
    ]


def _formatter(shared: list[Any], *, as_json: bool, colors: bool) -> logging.Formatter:
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        final += [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ]
    else:
        final += [_drop_span_id, structlog.dev.ConsoleRenderer(colors=colors)]
    final.append(_mask_secrets_in_text)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared], processors=final
    )


def configure_logging(
    service: str,
    *,
    log_format: str = "auto",
    level: str = "INFO",
    log_file: Path | None = None,
) -> None:
    """Routes structlog and stdlib logging to stderr in one format (and to `log_file`)."""
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    shared = _shared(service)
    handler.setFormatter(_formatter(shared, as_json=as_json, colors=sys.stderr.isatty()))
    handlers: list[logging.Handler] = [handler]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(_formatter(shared, as_json=True, colors=False))
        handlers.append(to_file)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    _quiet_temporal_messages()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _quiet_temporal_messages() -> None:
    """Workflow and activity context goes into fields of its own, not into the message.

    The workflow logger stays replay-safe: it writes nothing while a workflow
    replays its history, so a line is never logged twice.
    """
    from temporalio import activity, workflow

    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
