"""When a second booking of an order is the same booking as the first.

The repository keeps an address as the JSON of its `PostalAddress`, which
leaves out empty fields: `{"line2": ""}` and no `line2` at all are the same
address. So addresses are compared as messages, never as dicts or text.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from clients.proto.common.v1 import address_pb2


def address_message(address: dict[str, Any]) -> address_pb2.PostalAddress:
    """The stored address as the message it was made from."""
    # Fields a later contract adds are kept by a later service; this one
    # compares what it knows.
    return json_format.ParseDict(address, address_pb2.PostalAddress(), ignore_unknown_fields=True)


def address_json(address: address_pb2.PostalAddress) -> dict[str, Any]:
    """The address as the repository stores it."""
    return json_format.MessageToDict(address, preserving_proto_field_name=True)


def mismatched_fields(
    booked_address: dict[str, Any] | None,
    booked_items: int,
    address: dict[str, Any],
    item_count: int,
) -> list[str]:
    """The request fields in which a booking differs from the one already made."""
    differing = []
    if booked_address is None or address_message(booked_address) != address_message(address):
        differing.append("address")
    if booked_items != item_count:
        differing.append("item_count")
    return differing
