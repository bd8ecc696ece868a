"""Calling the platform as a patient client would, and counting what it answered.

A caller repeats a call, with the same request (the same request_id), until
it gets an answer that settles the question: success or a refusal. Every
answer, including the ones retried, is counted by method, code and
`ErrorInfo.reason`, so the report shows what callers saw during a fault.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

Response = TypeVar("Response")

# Answers that do not settle anything: the same call may succeed later.
# INTERNAL and UNKNOWN mean a bug by the platform's contract, but a bug met
# during an outage is no reason to drop an order: the caller tries again, and
# the tally shows that the platform answered them.
RETRIED_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 2.0


def reason_of(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason the status carries, or "-" when it has none."""
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        return "-"
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return "-"


@dataclass
class Tally:
    """Answers seen, by (method, code name, reason)."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def ok(self, method: str) -> None:
        self.counts[(method, "OK", "")] += 1

    def failed(self, method: str, error: grpc.aio.AioRpcError) -> None:
        self.counts[(method, error.code().name, reason_of(error))] += 1

    def errors(self, *methods: str) -> int:
        """Answers other than OK, to the given methods (to any when none is given)."""
        return sum(
            n
            for (method, code, _), n in self.counts.items()
            if code != "OK" and (not methods or method in methods)
        )


@dataclass
class Answer(Generic[Response]):
    """How a call ended: a response, a refusal, or neither before the caller gave up."""

    response: Response | None = None
    refusal: grpc.aio.AioRpcError | None = None
    attempts: int = 0

    @property
    def answered(self) -> bool:
        return self.response is not None or self.refusal is not None

    @property
    def refusal_reason(self) -> str:
        return reason_of(self.refusal) if self.refusal is not None else ""


def rpc(
    method: Callable[..., Awaitable[Response]], request: Any
) -> Callable[[float], Awaitable[Response]]:
    """The call `method(request, timeout=...)`, for `until_answered`."""
    return lambda timeout: method(request, timeout=timeout)


async def until_answered(
    method: str,
    call: Callable[[float], Awaitable[Response]],
    tally: Tally,
    *,
    attempt_timeout: float,
    give_up: Callable[[], bool],
) -> Answer[Response]:
    """Calls `call(timeout)` until it succeeds or is refused, or until `give_up()` holds."""
    answer: Answer[Response] = Answer()
    backoff = FIRST_BACKOFF
    while not give_up():
        answer.attempts += 1
        try:
            answer.response = await call(attempt_timeout)
            tally.ok(method)
            return answer
        except grpc.aio.AioRpcError as error:
            tally.failed(method, error)
            if error.code() not in RETRIED_CODES:
                answer.refusal = error
                return answer
        # Jittered, so that callers failed by the same outage do not return in step.
        await asyncio.sleep(random.uniform(backoff / 2, backoff))
        backoff = min(backoff * 2, MAX_BACKOFF)
    return answer
