"""The order commands: create, get, list, cancel, watch, confirm-delivery, update-address."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format

from clients.cli import options, render
from clients.cli.exits import ExitCode
from clients.cli.running import connection_of, run
from clients.cli.watch import watch_as_lines, watch_live
from clients.errors import CallError
from clients.orders import OrdersClient, line_items
from clients.proto.orders.v1 import orders_pb2

app = typer.Typer()


def parse_state(name: str) -> orders_pb2.OrderState.ValueType:
    """ORDER_STATE_SHIPPED from "shipped", "SHIPPED" or "ORDER_STATE_SHIPPED"."""
    wanted = name.upper().removeprefix("ORDER_STATE_")
    names = [n.removeprefix("ORDER_STATE_") for n in orders_pb2.OrderState.keys()][1:]
    if wanted not in names:
        raise typer.BadParameter(f"{name!r} is not a state; one of: {', '.join(names).lower()}")
    return orders_pb2.OrderState.Value(f"ORDER_STATE_{wanted}")


def parse_item(text: str) -> tuple[str, int]:
    sku, _, quantity = text.partition("=")
    if not sku or not quantity.isdigit():
        raise typer.BadParameter(f"{text!r}: write SKU=QUANTITY, e.g. MUG-1=2")
    return sku, int(quantity)


def _request_from(path: Path) -> orders_pb2.CreateOrderRequest:
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    try:
        return json_format.Parse(text, orders_pb2.CreateOrderRequest())
    except json_format.ParseError as error:
        raise ValueError(f"{path} is not a CreateOrderRequest in JSON: {error}") from None


def _show_order(order: orders_pb2.Order, *, as_json: bool, headline: str) -> None:
    if as_json:
        render.print_json(render.as_dict(order))
        return
    console = render.stdout()
    console.print(headline)
    console.print(render.order_panel(order))


@app.command()
def create(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="Customer placing the order.")] = "",
    item: Annotated[
        list[str] | None,
        typer.Option("--item", "-i", help="A line, SKU=QUANTITY; repeat for more lines."),
    ] = None,
    payment_token: Annotated[str, typer.Option(help="Card token, e.g. tok_visa.")] = "",
    request_id: Annotated[
        str, typer.Option(help="Idempotency key; a new one when not given. Repeat it to retry.")
    ] = "",
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file", "-f", help="A CreateOrderRequest as JSON ('-' for stdin); flags win."
        ),
    ] = None,
    name: options.Name = "",
    line1: options.Line1 = "",
    line2: options.Line2 = "",
    city: options.City = "",
    region: options.Region = "",
    postal_code: options.PostalCode = "",
    country: options.Country = "",
    watch: Annotated[
        bool, typer.Option("--watch", help="Then follow the order until it ends.")
    ] = False,
    as_json: options.JsonOutput = False,
) -> None:
    """Place an order, from flags or a JSON file."""
    try:
        request = _request_from(from_file) if from_file else orders_pb2.CreateOrderRequest()
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="--from-file") from None
    if item:
        del request.line_items[:]
        request.line_items.extend(line_items([parse_item(text) for text in item]))
    address = options.address(name, line1, line2, city, region, postal_code, country)
    for field, value in address.ListFields():
        setattr(request.shipping_address, field.name, value)
    request.customer_id = customer or request.customer_id
    request.payment_token = payment_token or request.payment_token
    # Made here, not in the client, so that a failure can name it for the retry.
    request.request_id = request_id or request.request_id or str(uuid.uuid4())
    connection = connection_of(ctx)

    async def work() -> ExitCode | None:
        async with connection.orders() as orders:
            order = (await orders.send_create_order(request)).order
            _show_order(
                order,
                as_json=as_json and not watch,
                headline=f"placed order [bold]{order.order_id}[/]",
            )
            if watch:
                return await _watch(orders, order.order_id, as_json=as_json, until=None)
        return None

    def unknown_outcome(error: CallError) -> str:
        if error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return (
                "The order may or may not have been placed. Repeat the same command with "
                f"--request-id {request.request_id}: it places the order at most once."
            )
        return ""

    run(work(), as_json=as_json, on_error=unknown_outcome)


@app.command()
def get(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order, e.g. ord_5d41...")],
    full: Annotated[bool, typer.Option(help="Also what its workflow is doing now.")] = False,
    as_json: options.JsonOutput = False,
) -> None:
    """Show one order."""
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.orders() as orders:
            response = await orders.get_order(order_id, full=full)
        if as_json:
            render.print_json(render.as_dict(response))
        else:
            progress = response.progress if response.HasField("progress") else None
            render.stdout().print(render.order_panel(response.order, progress))

    run(work(), as_json=as_json)


@app.command("list")
def list_orders(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="Only this customer's orders.")] = "",
    state: Annotated[
        list[str] | None, typer.Option(help="Only orders in this state; repeat for more.")
    ] = None,
    page_size: Annotated[int, typer.Option(min=1, max=500, help="Orders per page.")] = 20,
    page_token: Annotated[str, typer.Option(help="The page after the one that gave it.")] = "",
    every_page: Annotated[
        bool, typer.Option("--all", help="Every page, not only the first.")
    ] = False,
    as_json: options.JsonOutput = False,
) -> None:
    """List orders, newest first, a page at a time."""
    states = [parse_state(name) for name in state or ()]
    connection = connection_of(ctx)

    async def work() -> None:
        found: list[orders_pb2.Order] = []
        token = page_token
        async with connection.orders() as orders:
            while True:
                page = await orders.list_orders(
                    customer_id=customer, states=states, page_size=page_size, page_token=token
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
        console.print(render.orders_table(found))
        if token:
            console.print(f"[dim]more: orders list --page-token {token} (or --all)[/]")

    run(work(), as_json=as_json)


@app.command()
def cancel(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order to cancel.")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    as_json: options.JsonOutput = False,
) -> None:
    """Cancel an order that has not shipped; its finished steps are undone."""
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.orders() as orders:
            order = await orders.cancel_order(order_id, reason)
        _show_order(order, as_json=as_json, headline=f"cancelling order [bold]{order_id}[/]")

    run(work(), as_json=as_json)


@app.command("confirm-delivery")
def confirm_delivery(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order the carrier delivered.")],
    as_json: options.JsonOutput = False,
) -> None:
    """Record the carrier's report that a shipped order was delivered."""
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.orders() as orders:
            order = await orders.confirm_delivery(order_id)
        _show_order(order, as_json=as_json, headline=f"order [bold]{order_id}[/] delivered")

    run(work(), as_json=as_json)


@app.command("update-address")
def update_address(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order to send elsewhere.")],
    name: options.Name = "",
    line1: options.Line1 = "",
    line2: options.Line2 = "",
    city: options.City = "",
    region: options.Region = "",
    postal_code: options.PostalCode = "",
    country: options.Country = "",
    as_json: options.JsonOutput = False,
) -> None:
    """Change where an order goes (until it ships)."""
    address = options.address(name, line1, line2, city, region, postal_code, country)
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.orders() as orders:
            order = await orders.update_shipping_address(order_id, address)
        _show_order(order, as_json=as_json, headline=f"order [bold]{order_id}[/] now goes to:")

    run(work(), as_json=as_json)


@app.command()
def watch(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order to follow.")],
    until: Annotated[
        str | None, typer.Option(help="Stop once the order reaches this state, e.g. shipped.")
    ] = None,
    as_json: options.JsonOutput = False,
) -> None:
    """Follow an order through its steps until it ends (exit 7: cancelled or failed)."""
    stop_at = parse_state(until) if until else None
    connection = connection_of(ctx)

    async def work() -> ExitCode:
        async with connection.orders() as orders:
            return await _watch(orders, order_id, as_json=as_json, until=stop_at)

    run(work(), as_json=as_json)


async def _watch(
    orders: OrdersClient,
    order_id: str,
    *,
    as_json: bool,
    until: orders_pb2.OrderState.ValueType | None,
) -> ExitCode:
    console = render.stdout()
    if console.is_terminal and not as_json:
        return await watch_live(orders, order_id, console, until=until)
    return await watch_as_lines(orders, order_id, as_json=as_json, until=until)
