"""Waiting for something observed from outside (a query, a read) to become true."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    within: float = 10.0,
    every: float = 0.05,
) -> T:
    """Calls `probe` until `done` holds for its answer; fails after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            value = await probe()
            if done(value):
                return value
            await asyncio.sleep(every)
