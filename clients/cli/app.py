"""The `orders` command: its connection options, and its subcommands put together."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clients.cli import catalog_commands, ops_commands, order_commands
from clients.cli.connection import Connection, credentials_from

app = typer.Typer(
    name="orders",
    help=(
        "Place, follow and manage orders of the order platform.\n\n"
        "Exit codes: 0 ok, 1 unexpected error, 2 bad usage or input, 3 not found, "
        "4 refused by the platform's rules, 5 platform unavailable (repeat the command), "
        "6 credentials missing or not allowed, 7 watched order cancelled or failed."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.registered_commands += order_commands.app.registered_commands
app.add_typer(catalog_commands.stock, name="stock")
app.add_typer(catalog_commands.payments, name="payments")
app.add_typer(ops_commands.ops, name="ops")

_CONNECTION = "Connection"


@app.callback()
def connect(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Option(
            envvar="ORDERS_TARGET", help="The front door, host:port.", rich_help_panel=_CONNECTION
        ),
    ] = "127.0.0.1:50051",
    inventory_target: Annotated[
        str,
        typer.Option(
            envvar="INVENTORY_TARGET",
            help="The inventory service (stock).",
            rich_help_panel=_CONNECTION,
        ),
    ] = "127.0.0.1:50053",
    payments_target: Annotated[
        str,
        typer.Option(
            envvar="PAYMENTS_TARGET",
            help="The payment service (payments).",
            rich_help_panel=_CONNECTION,
        ),
    ] = "127.0.0.1:50052",
    token: Annotated[
        str | None,
        typer.Option(
            envvar="ORDERS_TOKEN",
            help="Bearer token to call with.",
            show_default=False,
            rich_help_panel=_CONNECTION,
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            envvar="ORDERS_TOKEN_FILE",
            help="File holding the token, re-read when it changes "
            "\\[default: .data/auth/operator.token when present].",
            rich_help_panel=_CONNECTION,
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            envvar="ORDERS_CA_FILE",
            help="CA that signed the servers' certificates; turns TLS on.",
            rich_help_panel=_CONNECTION,
        ),
    ] = None,
    cert_file: Annotated[
        Path | None,
        typer.Option(
            envvar="ORDERS_CERT_FILE",
            help="Own certificate, for mutual TLS.",
            rich_help_panel=_CONNECTION,
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="ORDERS_KEY_FILE",
            help="Key of the own certificate.",
            rich_help_panel=_CONNECTION,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            envvar="ORDERS_TIMEOUT",
            min=0.5,
            help="Seconds each attempt of a call may take.",
            rich_help_panel=_CONNECTION,
        ),
    ] = 10.0,
) -> None:
    try:
        credentials = credentials_from(
            token=token,
            token_file=token_file,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error)) from None
    ctx.obj = Connection(target, inventory_target, payments_target, credentials, timeout)


def main() -> None:
    app()
