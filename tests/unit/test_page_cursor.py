"""Page tokens: what encode_cursor makes comes back; what it could not have made is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from server.orders.repository import PageCursor, decode_cursor, encode_cursor

CURSOR = PageCursor(datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC), "ord_" + "f" * 32)


def test_a_token_comes_back_as_the_cursor_it_was_made_from() -> None:
    assert decode_cursor(encode_cursor(CURSOR, "0123456789abcdef"), "0123456789abcdef") == CURSOR


def test_a_token_for_other_filters_is_refused() -> None:
    with pytest.raises(ValueError, match="other filters"):
        decode_cursor(encode_cursor(CURSOR, "0123456789abcdef"), "fedcba9876543210")


def test_a_well_formed_token_far_longer_than_any_made_here_is_refused() -> None:
    made = encode_cursor(CURSOR, "0123456789abcdef")
    document = json.loads(base64.urlsafe_b64decode(made + "=" * (-len(made) % 4)))
    padded = json.dumps({**document, "pad": " " * 1000}).encode()
    token = base64.urlsafe_b64encode(padded).decode().rstrip("=")
    with pytest.raises(ValueError, match="not a token this server made"):
        decode_cursor(token, "0123456789abcdef")
    assert len(made) < 200
