"""The steps of a saga: run forward, retried on a schedule, undone in reverse.

A workflow holds one `Steps` and runs each forward step through it:

* as a regular activity, which Temporal retries on STEP_RETRY; or, when the
  workflow asks for it and runs local steps, as local activities of one
  attempt each, the workflow waiting out STEP_RETRY's pauses itself, on
  timers (see `Steps.run`);
* a pause ends early when the workflow passes on an operator's request to
  retry now (`Steps.retry_now`);
* a step's compensation is registered *before* the step runs, because a
  step can take effect and still fail to report back; `Steps.compensate`
  runs them in reverse order, retried in bursts until they succeed, and
  tells the workflow when one starts or stops failing, so that it can flag
  itself for an operator instead of dropping it.

What the workflow is doing (the step, its attempt, why its last attempt
failed, the compensations left) can be read at any time, for its queries.
Whether a step runs locally, and whether a pause honours a retry request,
are the workflow's to decide (its `workflow.patched` calls): the engine only
follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from clients.errors import Reason
    from worker.model import BUSINESS_ERRORS

T = TypeVar("T")

# Forward steps: transient failures are retried with backoff for as long as
# the step's schedule-to-close timeout allows; business failures never are.
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=BUSINESS_ERRORS,
)
STEP_TIMEOUT = timedelta(seconds=30)
STEP_DEADLINE = timedelta(minutes=5)
# A local step makes one attempt per local activity; the workflow waits
# between attempts by STEP_RETRY's schedule (see `Steps._run_local`).
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)

# Compensations: a burst of retries, then the workflow is flagged and the
# burst repeats after a pause, forever. Undoing must not give up. The pause
# starts short, so a brief outage delays the undoing by seconds, and doubles
# up to a ceiling, so a long one does not flood the history.
COMPENSATION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
COMPENSATION_FIRST_PAUSE = timedelta(seconds=5)
COMPENSATION_MAX_PAUSE = timedelta(minutes=5)

# What a step that failed raises: a regular activity wraps its failure in an
# ActivityError, a local one raises it as it is.
STEP_FAILURES = (ActivityError, ApplicationError, ActivityTimeoutError)


@dataclass
class Compensation:
    """An activity that undoes a step, with its argument."""

    name: str
    activity: Callable[..., Coroutine[Any, Any, None]]
    arg: Any


class Steps:
    """Runs a saga's forward steps and undoes them; the workflow holds one."""

    def __init__(
        self,
        *,
        local: bool,
        retry_now: bool,
        stopping: Callable[[], bool],
        on_attention: Callable[[], Awaitable[None]],
    ) -> None:
        """
        local: steps asked to run locally do (else every step is a regular activity).
        retry_now: a pause between attempts ends on `retry_now` (else it is a plain timer).
        stopping: whether the saga is asked to stop; checked before and after each step.
        on_attention: awaited when a compensation starts or stops failing (see `failing`).
        """
        self._local = local
        self._retry_now_on = retry_now
        self._stopping = stopping
        self._on_attention = on_attention
        self._retry_requested = False
        self._compensations: list[Compensation] = []
        self._failing: set[str] = set()
        self._current = ""
        # Attempts of a local step (the server counts those of the others).
        self._attempt = 0
        self._last_failure = ""

    # ------------------------------------------------------------ state

    @property
    def current(self) -> str:
        """The step being run or undone; after a step failed or was stopped, that step."""
        return self._current

    @property
    def attempt(self) -> int:
        """The attempt of the local step being run; 0 when the server counts them."""
        return self._attempt

    @property
    def last_failure(self) -> str:
        """Why the local step's last attempt failed, while it is retried."""
        return self._last_failure

    @property
    def pending(self) -> list[str]:
        """The compensations left to run, the next one first."""
        return [c.name for c in reversed(self._compensations)]

    @property
    def failing(self) -> list[str]:
        """The compensations that keep failing, by name."""
        return sorted(self._failing)

    # ---------------------------------------------------------- forward

    async def run(
        self,
        activity: Callable[..., Awaitable[T]],
        arg: Any,
        *,
        local: bool = False,
        step: str | None = None,
        more_args: Sequence[Any] = (),
        **options: Any,
    ) -> T:
        """Runs a forward step; raises asyncio.CancelledError if the saga is asked to stop.

        `local`: as local activities, if this saga runs local steps; then
        `more_args` follow `arg`, and `step` names the step where the activity
        does more than it (a step that also writes the order). `options` go to
        a regular activity: its timeouts (STEP_TIMEOUT and STEP_DEADLINE by
        default) and heartbeat timeout.
        """
        if self._stopping():
            raise asyncio.CancelledError
        self._current = step or activity.__name__
        if local and self._local:
            result = await self._run_local(activity, [arg, *more_args])
        else:
            result = await workflow.execute_activity_method(
                activity,
                arg,
                retry_policy=STEP_RETRY,
                start_to_close_timeout=options.pop("start_to_close_timeout", STEP_TIMEOUT),
                schedule_to_close_timeout=options.pop("schedule_to_close_timeout", STEP_DEADLINE),
                # The workflow waits for a cancelled step to finish, so that its
                # compensation never races the step itself.
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                **options,
            )
        self._current = ""
        if self._stopping():
            raise asyncio.CancelledError
        return result

    async def _run_local(self, activity: Callable[..., Awaitable[T]], args: Sequence[Any]) -> T:
        """Runs a short step as local activities, one attempt each, on STEP_RETRY's schedule.

        The workflow waits out the backoff itself, on a timer, rather than
        leaving it to the SDK: a workflow task stays open while a local
        activity retries inside it, which would hold back cancellations and
        queries for as long as a downstream service is down. Between
        attempts the workflow is idle, and it knows the attempt and why the
        last one failed. A failure that says when to try again (a call
        refused by an open circuit breaker: the time left in its cool-down)
        is tried again then, instead of on the schedule.
        """
        deadline = workflow.now() + STEP_DEADLINE
        self._attempt, self._last_failure = 1, ""
        try:
            while True:
                try:
                    return await workflow.execute_local_activity_method(
                        activity,
                        args=args,
                        retry_policy=ONE_ATTEMPT,
                        start_to_close_timeout=STEP_TIMEOUT,
                        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    )
                except STEP_FAILURES as error:
                    pause = asked_delay(error) or backoff(STEP_RETRY, self._attempt)
                    if not retryable(error, STEP_RETRY) or workflow.now() + pause > deadline:
                        raise
                    self._last_failure = failure_reason(error)[1]
                await self._pause(pause)
                self._attempt += 1
        finally:
            self._attempt, self._last_failure = 0, ""

    # ------------------------------------------------------------ pauses

    def retry_now(self) -> bool:
        """Ends the pause before the next attempt now; whether the request was taken.

        Taken only while something is being retried (a local step whose last
        attempt failed, a compensation that keeps failing), so that it cannot
        skip a pause that comes later for another reason. A request that
        arrives during an attempt skips the pause after it.
        """
        if not (self._retry_now_on and (self._last_failure or self._failing)):
            return False
        self._retry_requested = True
        return True

    async def _pause(self, pause: timedelta) -> None:
        """Waits before the next attempt; a `retry_now` request ends the wait early."""
        if not self._retry_now_on:
            await workflow.sleep(pause)
            return
        try:
            await workflow.wait_condition(lambda: self._retry_requested, timeout=pause)
        except TimeoutError:
            pass
        self._retry_requested = False

    # ------------------------------------------------------ compensation

    def add_compensation(self, compensation: Compensation) -> None:
        """Registers how to undo the step about to run."""
        self._compensations.append(compensation)

    def replace_compensations(self, compensations: Sequence[Compensation]) -> None:
        """Undoes these instead of what was registered, for a saga that must undo more.

        (A workflow task whose local steps ran may have been retried on
        another path: see OrderWorkflow._undo_every_step.)
        """
        self._compensations = list(compensations)

    async def compensate(self) -> None:
        """Runs the registered compensations, last first, each until it succeeds."""
        while self._compensations:
            # Popped only once done, so that `pending` lists it meanwhile.
            await self._undo(self._compensations[-1])
            self._compensations.pop()

    async def _undo(self, compensation: Compensation) -> None:
        # Counted under the names that the dashboards and alerts read
        # (docs/metrics.md); orders are the only saga so far.
        meter = workflow.metric_meter()
        self._current = compensation.name
        pause = COMPENSATION_FIRST_PAUSE
        while True:
            try:
                await workflow.execute_activity_method(
                    compensation.activity,
                    compensation.arg,
                    start_to_close_timeout=STEP_TIMEOUT,
                    retry_policy=COMPENSATION_RETRY,
                )
                meter.create_counter(
                    "order_compensations_total", "Compensations that succeeded"
                ).add(1, {"compensation": compensation.name})
                break
            except ActivityError as error:
                meter.create_counter(
                    "order_compensation_failures_total",
                    "Bursts of compensation attempts that all failed",
                ).add(1, {"compensation": compensation.name})
                workflow.logger.error(
                    "compensation keeps failing; retrying after a pause",
                    extra={"compensation": compensation.name, "error": str(error.cause)},
                )
                if compensation.name not in self._failing:
                    self._failing.add(compensation.name)
                    await self._on_attention()
                await self._pause(pause)
                pause = min(pause * 2, COMPENSATION_MAX_PAUSE)
        self._current = ""
        if compensation.name in self._failing:
            self._failing.discard(compensation.name)
            await self._on_attention()


def _cause(error: BaseException) -> BaseException | None:
    return error.cause if isinstance(error, ActivityError) else error


def retryable(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether a failed step may succeed if tried again, as Temporal decides under `policy`.

    The same decision for a local step, which the workflow retries itself,
    as for a regular one, which the server retries: a failure marked
    non-retryable, or of a type the policy lists (business failures, see
    `Reason.final`), is not tried again, nor is a step stopped on purpose.
    """
    cause = _cause(error)
    if isinstance(cause, ApplicationError):
        return not cause.non_retryable and cause.type not in (
            policy.non_retryable_error_types or ()
        )
    return not isinstance(cause, CancelledError)


def asked_delay(error: BaseException) -> timedelta | None:
    """The wait before the next attempt that a failed step asked for, if any.

    Read from the failure, which the history holds: the same on every replay.
    """
    cause = _cause(error)
    if isinstance(cause, ApplicationError):
        return cause.next_retry_delay
    return None


def backoff(policy: RetryPolicy, attempt: int) -> timedelta:
    """The pause after failed attempt `attempt` (1-based) under `policy`."""
    pause = policy.initial_interval * policy.backoff_coefficient ** (attempt - 1)
    return min(pause, policy.maximum_interval or pause)


def failure_reason(error: BaseException) -> tuple[str, str]:
    """The reason (an `ErrorInfo.reason`) and message of a step's failure."""
    cause = _cause(error)
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type, cause.message
    return Reason.DEPENDENCY_UNAVAILABLE.value, str(cause or error)
