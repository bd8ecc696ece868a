"""The order workflow's patches: one per change to the commands a run issues.

docs/versioning.md says when a change needs one, and lists them with the
histories that check each. The strings are in recorded histories: never
rename one.
"""

from temporalio import workflow

# Orders shipped before this change wait for delivery inside this workflow;
# later ones hand the wait to a DeliveryTrackingWorkflow child.
TRACKING_CHILD_PATCH = "delivery-tracking-child"
# Projection writes and the short steps run as local activities.
LOCAL_STEPS_PATCH = "local-steps"
# The charge and the booking request run as local activities too, and the
# delivery report is awaited in place for the first tracking period.
ONE_TASK_PATCH = "one-task-saga"
# Cancelling the workflow through Temporal no longer cancels the order: only
# the front door's `cancel` update does (see `run`).
ENGINE_CANCEL_IGNORED_PATCH = "engine-cancel-ignored"
# The booking takes the fences of server/orders/changes.py: it goes to the
# address the front door last accepted, and a cancellation the front door
# accepted first (its `cancel_order` signal) stops the order, however long
# the step before took.
ARRIVAL_ORDER_PATCH = "arrival-order"
# An operator's `retry_now` signal (OperatorService.RetryStep) cuts short the
# pause before the next attempt of a local step or the next burst of a
# compensation.
RETRY_NOW_PATCH = "retry-now"
# A projection write that a cancellation stopped (the saga's steps are
# cancelled while it runs) is not taken for a refusal: the order is not
# flagged for an operator, and the CANCELLING write that follows carries it on.
STOPPED_WRITE_PATCH = "stopped-write"
# Reserving, charging and committing each write the order they moved on in
# their own local activity, once the step succeeded, instead of in a local
# activity of its own after it: three fewer per order.
STEP_RECORDS_PATCH = "step-records"
# A run that has this takes every change above, and the seal of worker/guard.py,
# without asking for each: one marker and one update of its search attributes
# instead of six, which cost Temporal about a millisecond each per order
# (docs/performance.md, "One patch marker per order"). Runs started before
# it replay without it and ask for each, as before. Every patch after it
# stands for every patch before it too (EVERY_PATCH_MARKERS).
ONE_MARKER_PATCH = "one-patch-marker"
# A confirmed booking writes the order as shipped in its own local activity,
# as the steps before it do, instead of in a local activity of its own after
# it. It stands for every patch before it, as one-patch-marker does: a new
# run records this marker alone.
SHIPPED_RECORD_PATCH = "shipped-record"
# A new order's first write (PENDING, which stores it and tells whether it
# belongs to this run) is made by its reserve step's local activity, before
# it reserves, instead of in a local activity of its own: four local
# activities to SHIPPED. It stands for every patch before it.
FIRST_WRITE_PATCH = "first-write-in-reserve"

# A start or a signal without the platform's seal is refused (worker/guard.py,
# for every workflow of the worker); runs started before it replay unchecked.
SEALED_MESSAGES_PATCH = "sealed-messages"

# The patches that each stand for every patch before them, newest first: a
# new run records the newest alone, and a run started earlier finds the one
# it recorded (docs/versioning.md). Add a new patch at the front.
EVERY_PATCH_MARKERS = (FIRST_WRITE_PATCH, SHIPPED_RECORD_PATCH, ONE_MARKER_PATCH)


def newest_marker() -> str | None:
    """The newest of EVERY_PATCH_MARKERS this run has; None for a run started before them all.

    Asked in the order workflow's `__init__`, before anything else, and
    memoized by the SDK for the rest of the run: a run that replays without a
    marker is answered false for it whenever it is asked again.
    """
    for marker in EVERY_PATCH_MARKERS:
        if workflow.patched(marker):
            return marker
    return None


def takes(newest: str | None, patch: str) -> bool:
    """Whether a run whose newest marker is `newest` takes `patch`, one of EVERY_PATCH_MARKERS."""
    if newest is None:
        return False
    return EVERY_PATCH_MARKERS.index(newest) <= EVERY_PATCH_MARKERS.index(patch)
