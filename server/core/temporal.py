"""Connecting to Temporal, shared by the front door and the worker."""

from __future__ import annotations

from temporalio.client import Client
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from server.core.settings import Settings


async def connect_temporal(settings: Settings, wait_seconds: float = 120.0) -> Client:
    """Connects to Temporal, waiting for it to come up: processes start in any order."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(RuntimeError),
        wait=wait_exponential(multiplier=0.2, max=3),
        stop=stop_after_delay(wait_seconds),
        reraise=True,
    ):
        with attempt:
            return await Client.connect(
                settings.temporal_address, namespace=settings.temporal_namespace
            )
    raise AssertionError("unreachable")
