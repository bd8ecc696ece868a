"""What every typed client shares: its channel, default deadlines, retries, errors.

A client either opens its own channel to a target ("host:port") with the
given credentials, and closes it with `close()` or `async with`, or uses a
channel it is handed (and leaves it open).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from types import TracebackType
from typing import Protocol, Self, TypeVar

import grpc

from clients.channels import CallerCredentials, open_channel
from clients.errors import CallError, call_error
from clients.retry import RetryPolicy, with_retries

Request = TypeVar("Request")
Response = TypeVar("Response")
_Req = TypeVar("_Req", contravariant=True)
_Resp = TypeVar("_Resp", covariant=True)

# A unary call that answers at once, unless something is wrong.
DEFAULT_TIMEOUT_SECONDS = 10.0


class _Unary(Protocol[_Req, _Resp]):
    def __call__(self, request: _Req, *, timeout: float | None = None) -> Awaitable[_Resp]: ...


class _Streaming(Protocol[_Req, _Resp]):
    def __call__(self, request: _Req, *, timeout: float | None = None) -> AsyncIterator[_Resp]: ...


def _method_name(method: object) -> str:
    name = getattr(method, "_method", b"")
    return name.decode() if isinstance(name, bytes) else str(name)


class ServiceClient:
    """A typed client of one service; subclasses add a method per RPC."""

    def __init__(
        self,
        target: str | grpc.aio.Channel,
        credentials: CallerCredentials | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
    ) -> None:
        if isinstance(target, str):
            self._channel = open_channel(target, credentials)
            self._owns_channel = True
        elif credentials is not None:
            raise ValueError("credentials belong to the channel: pass a target to use them")
        else:
            self._channel = target
            self._owns_channel = False
        self.timeout = timeout
        self.retry = retry or RetryPolicy()

    @property
    def channel(self) -> grpc.aio.Channel:
        return self._channel

    async def close(self) -> None:
        """Closes the channel, if this client opened it."""
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _unary(
        self,
        method: _Unary[Request, Response],
        request: Request,
        *,
        idempotent: bool = True,
        deadline: float | None = None,
    ) -> Response:
        """One call, repeated as the retry policy allows; a failure raises CallError.

        `deadline` is each attempt's, in seconds; the client's `timeout` without it.
        """
        deadline = deadline if deadline is not None else self.timeout

        async def attempt() -> Response:
            response: Response = await method(request, timeout=deadline)
            return response

        try:
            return await with_retries(attempt, self.retry, idempotent=idempotent)
        except grpc.RpcError as error:
            raise call_error(error, _method_name(method)) from error

    async def _stream(
        self,
        method: _Streaming[Request, Response],
        request: Request,
        *,
        deadline: float | None = None,
    ) -> AsyncIterator[Response]:
        """A server stream that is opened again when it breaks with a retryable error.

        The attempts count from the last message received, so a long stream
        that breaks now and then keeps going; a read-only stream is always
        safe to open again.
        """
        failures = 0
        while True:
            try:
                async for message in method(request, timeout=deadline):
                    failures = 0
                    yield message
                return
            except grpc.RpcError as error:
                failures += 1
                if failures >= self.retry.max_attempts or not self.retry.retries(
                    error, idempotent=True
                ):
                    raise call_error(error, _method_name(method)) from error
                await asyncio.sleep(self.retry.backoff(failures, error))


__all__ = ["DEFAULT_TIMEOUT_SECONDS", "CallError", "ServiceClient"]
