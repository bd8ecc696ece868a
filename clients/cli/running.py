"""Runs a command's calls, and turns what goes wrong into a message and an exit code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import typer

from clients.cli.connection import Connection
from clients.cli.exits import ExitCode, report, usage_error
from clients.errors import CallError


def connection_of(ctx: typer.Context) -> Connection:
    connection = ctx.find_root().obj
    assert isinstance(connection, Connection), "the root command sets the connection"
    return connection


def run(
    work: Coroutine[Any, Any, ExitCode | None],
    *,
    as_json: bool,
    on_error: Callable[[CallError], str] | None = None,
) -> None:
    """Runs `work`; a failed call is reported (with `on_error`'s hint, if any) and exits."""
    try:
        code = asyncio.run(work) or ExitCode.OK
    except CallError as error:
        hint = on_error(error) if on_error else ""
        code = report(error, as_json=as_json, hint=hint)
    except (ValueError, OSError) as error:
        code = usage_error(str(error), as_json=as_json)
    raise typer.Exit(int(code))
