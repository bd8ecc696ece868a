"""Options several commands share."""

from __future__ import annotations

from typing import Annotated

import typer

from clients.proto.common.v1 import address_pb2

JsonOutput = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")
]

_ADDRESS = "Address"
Name = Annotated[str, typer.Option(help="Recipient's full name.", rich_help_panel=_ADDRESS)]
Line1 = Annotated[str, typer.Option(help="Street and number.", rich_help_panel=_ADDRESS)]
Line2 = Annotated[str, typer.Option(help="Apartment, floor, building.", rich_help_panel=_ADDRESS)]
City = Annotated[str, typer.Option(help="City or town.", rich_help_panel=_ADDRESS)]
Region = Annotated[str, typer.Option(help="State, province or region.", rich_help_panel=_ADDRESS)]
PostalCode = Annotated[str, typer.Option(help="Postal or ZIP code.", rich_help_panel=_ADDRESS)]
Country = Annotated[
    str, typer.Option(help="ISO 3166-1 alpha-2 country code, e.g. GB.", rich_help_panel=_ADDRESS)
]


def address(
    name: str, line1: str, line2: str, city: str, region: str, postal_code: str, country: str
) -> address_pb2.PostalAddress:
    return address_pb2.PostalAddress(
        name=name,
        line1=line1,
        line2=line2,
        city=city,
        region=region,
        postal_code=postal_code,
        country_code=country,
    )
