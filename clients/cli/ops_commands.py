"""`orders ops ...`: the operators' commands (operator.v1.OperatorService).

search, show, retry, cancel, resolve, and attention: the orders needing a
person, once or as a live table refreshed every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from clients.cli import options, render
from clients.cli.exits import ExitCode, exit_code_of
from clients.cli.ops_render import action_panel, detail_view, search_table
from clients.cli.order_commands import parse_state
from clients.cli.running import connection_of, run
from clients.errors import CallError, Reason
from clients.operator import OperatorClient
from clients.proto.operator.v1 import operator_pb2
from clients.proto.orders.v1 import orders_pb2

ops = typer.Typer(
    help="Find the orders that need a person, look into one, and act on it (operators).",
    no_args_is_help=True,
)

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

Note = Annotated[str, typer.Option(help="Why, for the record (required).")]
RequestId = Annotated[
    str,
    typer.Option(help="Idempotency key; a new one when not given. Repeat it to retry safely."),
]


def parse_span(text: str) -> timedelta:
    """A time span from "90", "90s", "10m", "2h" or "1d"."""
    match = _SPAN.match(text)
    if not match:
        raise typer.BadParameter(f"{text!r}: write a span such as 90s, 10m, 2h or 1d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def parse_time(text: str) -> datetime:
    """A time from ISO 8601 ("2025-06-01", "2025-06-01T12:00:00+02:00"); UTC without a zone."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: write an ISO 8601 time, e.g. 2025-06-01T12:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _reused(error: CallError) -> str:
    if error.reason is Reason.REQUEST_ID_REUSED:
        return (
            "That request id was already used for another action, order or note: repeat "
            "the first command exactly, or leave out --request-id to act anew."
        )
    return ""


@ops.command()
def search(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None, typer.Option(help="Only orders in this state; repeat for more.")
    ] = None,
    min_age: Annotated[
        str | None,
        typer.Option(help="Only orders unchanged for at least this long, e.g. 10m, 2h, 1d."),
    ] = None,
    attention: Annotated[
        bool, typer.Option("--attention", help="Only orders flagged attention_required.")
    ] = False,
    failure_reason: Annotated[
        str, typer.Option(help="Only orders that failed for this reason, e.g. PAYMENT_DECLINED.")
    ] = "",
    customer: Annotated[str, typer.Option(help="Only this customer's orders.")] = "",
    created_after: Annotated[
        str | None, typer.Option(help="Only orders placed at or after this time (ISO 8601).")
    ] = None,
    created_before: Annotated[
        str | None, typer.Option(help="Only orders placed before this time (ISO 8601).")
    ] = None,
    page_size: Annotated[int, typer.Option(min=1, max=500, help="Orders per page.")] = 20,
    page_token: Annotated[str, typer.Option(help="The page after the one that gave it.")] = "",
    every_page: Annotated[
        bool, typer.Option("--all", help="Every page, not only the first.")
    ] = False,
    as_json: options.JsonOutput = False,
) -> None:
    """Find orders by state, time in state, attention flag, failure, customer and time placed."""
    states = [parse_state(name) for name in state or ()]
    span = parse_span(min_age) if min_age else None
    after = parse_time(created_after) if created_after else None
    before = parse_time(created_before) if created_before else None
    connection = connection_of(ctx)

    async def work() -> None:
        found: list[orders_pb2.Order] = []
        token = page_token
        async with connection.operator() as client:
            while True:
                page = await client.search_orders(
                    states=states,
                    min_age_in_state=span,
                    attention_required_only=attention,
                    failure_reason=failure_reason,
                    customer_id=customer,
                    created_after=after,
                    created_before=before,
                    page_size=page_size,
                    page_token=token,
                )
                found.extend(page.orders)
                token = page.next_page_token
                if not (every_page and token):
                    break
        if as_json:
            render.print_json(
                {"orders": [render.as_dict(o) for o in found], "next_page_token": token}
            )
            return
        console = render.stdout()
        console.print(search_table(found))
        if token:
            console.print(f"[dim]more: the same command with --page-token {token} (or --all)[/]")

    run(work(), as_json=as_json)


@ops.command()
def show(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order, e.g. ord_5d41...")],
    as_json: options.JsonOutput = False,
) -> None:
    """Everything about one order: its workflow, holdings, history and the actions taken."""
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.operator() as client:
            detail = await client.get_order_detail(order_id)
        if as_json:
            render.print_json(render.as_dict(detail))
        else:
            render.stdout().print(detail_view(detail))

    run(work(), as_json=as_json)


def _show_action(
    response: operator_pb2.RetryStepResponse
    | operator_pb2.CancelAndCompensateResponse
    | operator_pb2.MarkResolvedResponse,
    *,
    as_json: bool,
) -> None:
    if as_json:
        render.print_json(render.as_dict(response))
    else:
        render.stdout().print(action_panel(response.action, response.order))


@ops.command()
def retry(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order whose workflow should retry.")],
    note: Note,
    request_id: RequestId = "",
    as_json: options.JsonOutput = False,
) -> None:
    """Ask the order's workflow to retry its failing step or compensation now."""
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.operator() as client:
            response = await client.retry_step(order_id, note=note, request_id=request_id or None)
        _show_action(response, as_json=as_json)

    run(work(), as_json=as_json, on_error=_reused)


@ops.command()
def cancel(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order to cancel.")],
    note: Note,
    request_id: RequestId = "",
    as_json: options.JsonOutput = False,
) -> None:
    """Cancel the order and undo every step done (as CancelOrder, with the note as reason)."""
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.operator() as client:
            response = await client.cancel_and_compensate(
                order_id, note=note, request_id=request_id or None
            )
        _show_action(response, as_json=as_json)

    run(work(), as_json=as_json, on_error=_reused)


@ops.command()
def resolve(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order dealt with.")],
    note: Note,
    request_id: RequestId = "",
    as_json: options.JsonOutput = False,
) -> None:
    """Clear the order's attention flag, saying what was done about it."""
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.operator() as client:
            response = await client.mark_resolved(
                order_id, note=note, request_id=request_id or None
            )
        _show_action(response, as_json=as_json)

    run(work(), as_json=as_json, on_error=_reused)


@ops.command()
def attention(
    ctx: typer.Context,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep the table up to date until Ctrl-C.")
    ] = False,
    every: Annotated[
        float, typer.Option(min=0.1, help="Seconds between refreshes, with --watch.")
    ] = 3.0,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Orders shown at most.")] = 50,
    rounds: Annotated[
        int, typer.Option(hidden=True, min=0, help="Refreshes before stopping (0: never).")
    ] = 0,
    as_json: options.JsonOutput = False,
) -> None:
    """The orders flagged attention_required, newest first; with --watch, a live table."""
    connection = connection_of(ctx)

    async def work() -> ExitCode | None:
        async with connection.operator() as client:
            if not watch:
                page = await client.search_orders(attention_required_only=True, page_size=limit)
                _print_attention(list(page.orders), as_json=as_json)
                return None
            await _watch_attention(client, every, limit, rounds, as_json=as_json)
        return None

    run(work(), as_json=as_json)


def _print_attention(orders: list[orders_pb2.Order], *, as_json: bool) -> None:
    if as_json:
        render.print_json({"orders": [render.as_dict(o) for o in orders]})
    else:
        render.stdout().print(search_table(orders, title=_attention_title(len(orders))))


def _attention_title(count: int) -> str:
    now = datetime.now().strftime("%H:%M:%S")
    return f"orders needing attention: {count} (at {now})"


async def _watch_attention(
    client: OperatorClient,
    every: float,
    limit: int,
    rounds: int,
    *,
    as_json: bool,
) -> None:
    """Redraws the table in place on a terminal; elsewhere prints it at each refresh."""
    console = render.stdout()
    live = console.is_terminal and not as_json
    done = 0
    with Live(console=console, auto_refresh=False) if live else contextlib.nullcontext() as view:
        while True:
            try:
                page = await client.search_orders(attention_required_only=True, page_size=limit)
                orders, problem = list(page.orders), ""
            except CallError as error:
                # A live view rides out a platform that is briefly away.
                if exit_code_of(error) is not ExitCode.UNAVAILABLE:
                    raise
                orders, problem = [], f"{error.reason.value}: {error.message}"
            if view is not None:
                table = search_table(orders, title=_attention_title(len(orders)))
                footer = Text(
                    problem or f"refreshed every {every:g} s; Ctrl-C to stop",
                    style="red" if problem else "dim",
                )
                view.update(Group(table, footer), refresh=True)
            elif problem:
                console.print(f"[red]{problem}[/]")
            else:
                _print_attention(orders, as_json=as_json)
            done += 1
            if rounds and done >= rounds:
                return
            await asyncio.sleep(every)
