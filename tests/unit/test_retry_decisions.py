"""Whether a failure is retried: one rule (clients/errors.py), the same answer everywhere.

`Reason.retry` decides it once per reason; `Reason.retryable` (a caller
repeats the call), BUSINESS_ERRORS (the steps' retry policy), the activities'
`non_retryable` and the saga engine's check for local steps all follow it.
The table pins each reason's answer: a new reason fails here until someone
decides it.
"""

from __future__ import annotations

import pytest
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from clients.errors import Error, Reason, Retry
from worker.activities import _application_error
from worker.model import BUSINESS_ERRORS
from worker.saga import STEP_RETRY, retryable

T, F, U = Retry.TRANSIENT, Retry.FINAL, Retry.UNCERTAIN

# reason: (its Retry, a caller may repeat the call as it is, a saga step retries it)
DECISIONS: dict[Reason, tuple[Retry, bool, bool]] = {
    Reason.INVALID_ARGUMENT: (F, False, False),
    Reason.UNKNOWN_SKU: (U, False, True),
    Reason.CURRENCY_MISMATCH: (U, False, True),
    Reason.REQUEST_ID_REUSED: (U, False, True),
    Reason.IDEMPOTENCY_KEY_REUSED: (F, False, False),
    Reason.ORDER_NOT_FOUND: (U, False, True),
    Reason.PAYMENT_NOT_FOUND: (U, False, True),
    Reason.SHIPMENT_NOT_FOUND: (U, False, True),
    Reason.SKU_NOT_FOUND: (F, False, False),
    Reason.OUT_OF_STOCK: (F, False, False),
    Reason.PAYMENT_DECLINED: (F, False, False),
    Reason.ADDRESS_UNDELIVERABLE: (F, False, False),
    Reason.ALREADY_SHIPPED: (U, False, True),
    Reason.ORDER_FINISHED: (U, False, True),
    Reason.NOT_SHIPPED: (U, False, True),
    Reason.SHIPMENT_CANCELLED: (F, False, False),
    Reason.RESERVATION_RELEASED: (F, False, False),
    Reason.RESERVATION_NOT_FOUND: (F, False, False),
    Reason.SHIPMENT_DIFFERS: (U, False, True),
    Reason.RESERVATION_DIFFERS: (F, False, False),
    Reason.CHARGE_VOIDED: (F, False, False),
    Reason.PAYMENT_METHOD_MISMATCH: (F, False, False),
    Reason.RATE_LIMITED: (U, False, True),
    Reason.OVERLOADED: (U, False, True),
    Reason.DEPENDENCY_UNAVAILABLE: (T, True, True),
    Reason.GATEWAY_UNAVAILABLE: (T, True, True),
    Reason.UNAUTHENTICATED: (U, False, True),
    Reason.PERMISSION_DENIED: (U, False, True),
    Reason.WORKFLOW_ENDED: (U, False, True),
    Reason.INTERNAL: (U, False, True),
}


def _wrapped(cause: BaseException) -> ActivityError:
    """A failure as a regular activity reports it to the workflow."""
    error = ActivityError(
        "activity failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="worker",
        activity_type="reserve_stock",
        activity_id="1",
        retry_state=None,
    )
    error.__cause__ = cause
    return error


def test_every_reason_is_decided() -> None:
    assert set(DECISIONS) == set(Reason)


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_each_layer_gives_the_reason_its_decision(reason: Reason) -> None:
    retry, caller_repeats, step_retries = DECISIONS[reason]
    assert reason.retry is retry
    assert reason.retryable is caller_repeats
    assert reason.final is not step_retries
    # The steps' retry policy, for regular activities (Temporal decides).
    assert (reason.value in BUSINESS_ERRORS) is not step_retries
    assert (reason.value in (STEP_RETRY.non_retryable_error_types or ())) is not step_retries
    # The activity marks the failure; the engine decides for a local step.
    raised = _application_error(Error(reason, "failed"))
    assert raised.non_retryable is not step_retries
    assert retryable(raised, STEP_RETRY) is step_retries
    assert retryable(_wrapped(raised), STEP_RETRY) is step_retries
    # Even a failure that forgot to say non_retryable is not retried if it is final.
    unmarked = ApplicationError("failed", type=reason.value)
    assert retryable(unmarked, STEP_RETRY) is step_retries


def test_only_unavailable_reasons_are_transient() -> None:
    transient = {reason for reason in Reason if reason.retry is Retry.TRANSIENT}
    assert transient == {reason for reason in Reason if reason.code.name == "UNAVAILABLE"}


def test_failures_without_a_reason() -> None:
    # Marked non-retryable by whoever raised it (a refused seal, CANCELLED_FIRST).
    assert not retryable(
        ApplicationError("no", type="CANCELLED_FIRST", non_retryable=True), STEP_RETRY
    )
    assert retryable(ApplicationError("unknown type", type="SOMETHING_ELSE"), STEP_RETRY)
    assert retryable(ApplicationError("no type"), STEP_RETRY)
    # A step stopped on purpose is not tried again; a timeout or a crash is.
    assert not retryable(_wrapped(CancelledError("stopped")), STEP_RETRY)
    assert retryable(_wrapped(RuntimeError("crashed")), STEP_RETRY)
    assert retryable(RuntimeError("crashed"), STEP_RETRY)
