"""Which database failures are an outage (retry) and which are text it cannot store."""

from __future__ import annotations

import asyncpg
import pytest

from server.core.database import bad_text, unavailable

OUTAGES = [
    ConnectionRefusedError(111, "Connection refused"),
    FileNotFoundError(2, "No such file or directory"),  # the Unix socket is gone
    ConnectionResetError(104, "reset by peer"),
    TimeoutError(),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.TooManyConnectionsError("too many clients"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.SerializationError("could not serialize access"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InterfaceError("pool is closing"),
]
BUGS = [
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.PostgresSyntaxError("syntax error at or near"),
    asyncpg.UndefinedTableError("relation does not exist"),
    asyncpg.NumericValueOutOfRangeError("bigint out of range"),
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=repr)
def test_an_outage_is_unavailable(error: BaseException) -> None:
    assert unavailable(error)
    assert not bad_text(error)


@pytest.mark.parametrize("error", BUGS, ids=repr)
def test_a_bug_is_neither(error: BaseException) -> None:
    assert not unavailable(error)
    assert not bad_text(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
        asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence"),
    ],
    ids=repr,
)
def test_text_the_database_cannot_store_is_bad_text(error: BaseException) -> None:
    assert bad_text(error)
    assert not unavailable(error)
