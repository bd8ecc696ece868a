"""When the typed clients repeat a call, and how long they wait in between.

Only a call whose outcome is unknown is repeated, and only when repeating it
cannot do something twice:

* UNAVAILABLE: the server (or one behind it) could not be reached or asked
  to be called again; every method of the platform may be repeated then.
* RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo`: admission control
  turned the call away before doing anything, and said when to come back;
  every method may be repeated then, after that delay.
* DEADLINE_EXCEEDED: the call may have done its work; it is repeated only
  for idempotent methods. Every write of the platform's public API is
  idempotent (CreateOrder by its request_id, which the client keeps across
  attempts), so the flag matters for methods added later that are not.

Waits grow exponentially with full jitter, so that callers failing together
do not come back together, and are never shorter than the server's
`google.rpc.RetryInfo`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from clients.errors import retry_delay

T = TypeVar("T")

ALWAYS_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE})
RETRIED_WHEN_IDEMPOTENT = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a client repeats a call whose outcome is unknown."""

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    multiplier: float = 2.0

    def retries(self, error: BaseException, *, idempotent: bool) -> bool:
        """Whether a call that failed with `error` may be made again."""
        if not isinstance(error, grpc.RpcError) or not callable(getattr(error, "code", None)):
            return False
        code = error.code()  # type: ignore[attr-defined]
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            # Only a refusal that says when to come back: a message too large,
            # say, would be refused again.
            return hasattr(error, "trailing_metadata") and retry_delay(error) is not None
        return code in ALWAYS_RETRIED or (idempotent and code in RETRIED_WHEN_IDEMPOTENT)

    def backoff(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        wait = random.uniform(0, ceiling)
        suggested = (
            retry_delay(error)
            if isinstance(error, grpc.RpcError) and hasattr(error, "trailing_metadata")
            else None
        )
        return max(wait, suggested or 0.0)


NO_RETRIES = RetryPolicy(max_attempts=1)


async def with_retries(
    attempt: Callable[[], Awaitable[T]], policy: RetryPolicy, *, idempotent: bool
) -> T:
    """Runs `attempt` until it succeeds, fails for good, or the policy's attempts run out."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return policy.backoff(state.attempt_number, error)

    retrying = AsyncRetrying(
        retry=retry_if_exception(lambda error: policy.retries(error, idempotent=idempotent)),
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait,
        reraise=True,
    )
    return await retrying(attempt)
