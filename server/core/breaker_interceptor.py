"""A circuit breaker on a channel to another service: one per service per process.

The worker and the front door put one on each channel they open to payments,
inventory and shipping, so that servicers and activities keep calling their
stubs as before. For the breaker (server/core/breaker.py) a call

* failed when the service could not be reached or did not answer in time:
  UNAVAILABLE (a transport failure reads as that too) or DEADLINE_EXCEEDED;
* succeeded when the service answered anything else: a business error
  (FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT...) is an answer;
* says nothing when its caller cancelled it.

A call refused by the breaker fails at once as UNAVAILABLE with the
vocabulary's DEPENDENCY_UNAVAILABLE, `service` and `circuit` (`open`) in its
ErrorInfo metadata, and a `google.rpc.RetryInfo` of the time left in the
cool-down: the same shape as a server's answer, so `clients.errors.decode`
reads it, and `refused_by_breaker` tells it apart.

Every change of state is logged and sets `downstream_circuit_state`; every
refusal counts in `downstream_circuit_refused_total` (docs/metrics.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import structlog
from grpc_status import rpc_status

from clients.channels import CallerCredentials, open_channel
from clients.errors import Error, Reason, with_retry_delay
from server.core.breaker import Breaker, Refused, State
from server.core.metrics import CIRCUIT_REFUSED, CIRCUIT_STATE
from server.core.services import Process
from server.core.settings import Settings

log = structlog.get_logger(__name__)

FAILURES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# ErrorInfo metadata of a refusal: which breaker refused it.
CIRCUIT = "circuit"


class CircuitBreaking(grpc.aio.UnaryUnaryClientInterceptor):
    """Runs every unary call of a channel through `breaker` (every call between services is one)."""

    def __init__(self, service: str, breaker: Breaker) -> None:
        self.service = service
        self.breaker = breaker
        self._refused = CIRCUIT_REFUSED.labels(service)

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        try:
            admitted = self.breaker.admit()
        except Refused as refused:
            self._refused.inc()
            raise refusal(self.service, refused.retry_after) from None
        try:
            call = await continuation(client_call_details, request)
            code = await call.code()
        except BaseException:
            # Cancelled by its caller (or a bug here): nothing learnt about the service.
            self.breaker.abandoned(admitted)
            raise
        if code in FAILURES:
            self.breaker.failed(admitted)
        elif code is grpc.StatusCode.CANCELLED:
            self.breaker.abandoned(admitted)
        else:
            self.breaker.succeeded(admitted)
        return call


def refusal(service: str, retry_after: float) -> grpc.aio.AioRpcError:
    """What a caller gets for a call refused by `service`'s breaker."""
    error = Error(
        Reason.DEPENDENCY_UNAVAILABLE,
        f"{service} keeps failing; calls to it are paused",
        {"service": service, CIRCUIT: "open"},
    )
    status = rpc_status.to_status(with_retry_delay(error.to_status(), retry_after))
    return grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        status.details,
    )


def refused_by_breaker(error: Error) -> bool:
    """Whether a decoded failure is a breaker's refusal (its retry_delay is the time left)."""
    return error.metadata.get(CIRCUIT) == "open" and error.retry_delay is not None


def breaker_for(
    service: str,
    *,
    threshold: int,
    cooldown: float,
    clock: Callable[[], float] = time.monotonic,
) -> Breaker:
    """A breaker for calls to `service`, logged and measured."""

    def changed(old: State, new: State) -> None:
        CIRCUIT_STATE.labels(service).set(new.value)
        fields = {"service": service, "old": old.name.lower(), "new": new.name.lower()}
        if new is State.OPEN:
            log.warning(
                "circuit breaker opened: calls to the service are paused",
                **fields,
                cooldown_seconds=cooldown,
                why="the probe failed"
                if old is State.HALF_OPEN
                else f"{threshold} consecutive failures",
            )
        else:
            log.info("circuit breaker state changed", **fields)

    CIRCUIT_STATE.labels(service).set(State.CLOSED.value)
    return Breaker(threshold=threshold, cooldown=cooldown, clock=clock, on_change=changed)


def breaker_interceptors(service: str, settings: Settings) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors that put `service`'s breaker on a channel (none when switched off)."""
    if not settings.circuit_breaker_enabled:
        return []
    breaker = breaker_for(
        service,
        threshold=settings.circuit_breaker_failures,
        cooldown=settings.circuit_breaker_cooldown_seconds,
    )
    return [CircuitBreaking(service, breaker)]


def guarded_channels(
    caller: Process, settings: Settings, credentials: CallerCredentials | None
) -> dict[str, grpc.aio.Channel]:
    """A channel to each service `caller` calls (server/core/services.py), each behind
    that service's breaker, by the service's name."""
    return {
        name: open_channel(
            settings.target_of(name),
            credentials,
            interceptors=breaker_interceptors(name, settings),
        )
        for name in caller.calls
    }
