"""Text fields refuse what Postgres cannot store and what no identifier or address holds."""

from __future__ import annotations

import pytest

from clients.errors import Error
from clients.proto.common.v1 import address_pb2
from server.core.validation import Violations


def _fields(violations: Violations) -> list[str]:
    with pytest.raises(Error) as raised:
        violations.raise_if_any()
    return [v.field for v in raised.value.violations]


@pytest.mark.parametrize(
    "value", ["a\x00b", "\x00", "ord\x01", "tab\there", "line\nbreak", "\x7f", "\x85"]
)
def test_required_text_refuses_control_characters(value: str) -> None:
    assert _fields(Violations().require("order_id", value)) == ["order_id"]


@pytest.mark.parametrize("value", ["ord_1", "Ada Lovelace", "Zürich", "東京", "a" * 128])
def test_required_text_takes_ordinary_text(value: str) -> None:
    assert not Violations().require("order_id", value)


def test_required_text_reports_a_blank_value_once() -> None:
    assert _fields(Violations().require("order_id", "   ")) == ["order_id"]


def test_optional_text_may_be_empty_but_not_hold_nul() -> None:
    assert not Violations().optional("reason", "")
    assert _fields(Violations().optional("reason", "a\x00b")) == ["reason"]


def test_free_text_may_span_lines_but_not_hold_nul() -> None:
    assert not Violations().optional("reason", "first\nsecond\ttabbed\r\n", multiline=True)
    assert _fields(Violations().optional("reason", "a\x00b", multiline=True)) == ["reason"]


def test_every_address_line_refuses_nul() -> None:
    address = address_pb2.PostalAddress(
        name="Ada\x00", line1="12 Row", line2="\x00", city="London", postal_code="N1",
        region="a\x00", country_code="GB",
    )  # fmt: skip
    assert _fields(Violations().address("address", address, True)) == [
        "address.name",
        "address.line2",
        "address.region",
    ]


@pytest.mark.parametrize("sku", ["MUG-1\n", "MUG\x00", "", "a" * 65, "MUG 1"])
def test_a_sku_is_letters_digits_and_marks_only(sku: str) -> None:
    assert _fields(Violations().sku("sku", sku)) == ["sku"]
