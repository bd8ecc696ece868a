"""The commands about stock and money: `stock set`, `stock show`, `payments list`."""

from __future__ import annotations

from typing import Annotated

import typer

from clients.cli import options, render
from clients.cli.money import parse_money
from clients.cli.running import connection_of, run

stock = typer.Typer(help="Set and show the catalog's stock and prices.", no_args_is_help=True)
payments = typer.Typer(help="The payments of orders.", no_args_is_help=True)


@stock.command("set")
def set_stock(
    ctx: typer.Context,
    sku: Annotated[str, typer.Argument(help="The SKU, e.g. MUG-1; made if new.")],
    quantity: Annotated[int, typer.Option(min=0, help="Units available from now on.")],
    price: Annotated[str, typer.Option(help="Price of one unit, e.g. 12.50.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 currency code.")] = "USD",
    as_json: options.JsonOutput = False,
) -> None:
    """Set the units available and the unit price of a SKU."""
    try:
        unit_price = parse_money(price, currency)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--price") from None
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.inventory() as inventory:
            item = await inventory.set_stock(sku, quantity, unit_price)
        if as_json:
            render.print_json(render.as_dict(item))
        else:
            render.stdout().print(render.stock_table([item]))

    run(work(), as_json=as_json)


@stock.command("show")
def show_stock(
    ctx: typer.Context,
    skus: Annotated[list[str], typer.Argument(help="One or more SKUs.")],
    as_json: options.JsonOutput = False,
) -> None:
    """Show the stock and price of SKUs (one: an unknown SKU fails; several: it is left out)."""
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.inventory() as inventory:
            if len(skus) == 1:
                items = [await inventory.get_stock(skus[0])]
            else:
                items = await inventory.batch_get_stock(skus)
        if as_json:
            render.print_json({"items": [render.as_dict(item) for item in items]})
        else:
            render.stdout().print(render.stock_table(items))

    run(work(), as_json=as_json)


@payments.command("list")
def list_payments(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order whose payments to list.")],
    as_json: options.JsonOutput = False,
) -> None:
    """List an order's payments, oldest first."""
    connection = connection_of(ctx)

    async def work() -> None:
        async with connection.payments() as client:
            found = await client.list_payments(order_id)
        if as_json:
            render.print_json({"payments": [render.as_dict(p) for p in found]})
        else:
            render.stdout().print(render.payments_table(found))

    run(work(), as_json=as_json)
