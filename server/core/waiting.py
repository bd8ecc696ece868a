"""Waiting for a dependency at start-up: processes start in any order."""

from __future__ import annotations

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

log = structlog.get_logger(__name__)


def waiting_for(
    dependency: str,
    errors: type[BaseException] | tuple[type[BaseException], ...],
    *,
    seconds: float,
) -> AsyncRetrying:
    """Retries while `errors` are raised, with backoff, for up to `seconds`, logging each wait."""

    def note(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info(
            f"waiting for {dependency}",
            attempt=state.attempt_number,
            retry_in_seconds=round(state.next_action.sleep if state.next_action else 0, 1),
            error=str(error) or type(error).__name__,
        )

    return AsyncRetrying(
        retry=retry_if_exception_type(errors),
        wait=wait_exponential(multiplier=0.2, max=3),
        stop=stop_after_delay(seconds),
        before_sleep=note,
        reraise=True,
    )
