"""Calls refused before their handler runs: always counted, seldom logged, never traced.

Anyone who reaches a port can send calls without credentials, as fast as they
like. A span and a log line for each would let them fill the trace store and
the disk at no cost to themselves. So a refused call costs a counter
increment (`grpc_server_refused_total`, by method and reason), and a log line
at most once per LOG_INTERVAL_SECONDS for each method and reason, which says
how many refusals went unlogged since the one before.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from clients.errors import Error
from server.core.clip import clip
from server.core.metrics import RPC_REFUSED

log = structlog.get_logger(__name__)

LOG_INTERVAL_SECONDS = 60.0


class Refusals:
    """The refusals of one method."""

    def __init__(
        self,
        method: str,
        *,
        interval: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        service, _, name = method.lstrip("/").partition("/")
        self._method = method
        self._labels = (service, name)
        self._interval = interval
        self._clock = clock
        self._quiet_until: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def note(self, refused: Error) -> None:
        """Counts a refusal; logs it unless one of its reason was logged lately."""
        reason = refused.reason.value
        RPC_REFUSED.labels(*self._labels, reason).inc()
        now = self._clock()
        if now < self._quiet_until.get(reason, now):
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return
        self._quiet_until[reason] = now + self._interval
        log.info(
            "call refused",
            method=self._method,
            reason=reason,
            # The message may quote what the caller sent (a token's header, say).
            why=clip(refused.message),
            unlogged_before=self._unlogged.pop(reason, 0),
        )
