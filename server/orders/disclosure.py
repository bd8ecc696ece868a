"""What a customer service is told about why an order, or a step of it, failed.

The order workflow keeps a failure's own text (`Order.failure.message`,
`OrderProgress.last_attempt_failure`): a downstream service's message, a
connection error naming internal hosts and ports, an exception's text.
Operators need it to act. A customer service acts for a shop's customer and
is told the reason from the error vocabulary (clients/errors.py) with that
reason's standard message instead; a reason outside the vocabulary is
INTERNAL to it.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from clients.errors import Reason
from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import customer_scope

Response = TypeVar("Response", bound=Message)

# A step is retried only after a failure that may pass: a service away.
_RETRIED_BECAUSE = Reason.DEPENDENCY_UNAVAILABLE


def _in_vocabulary(reason: str, otherwise: Reason = Reason.INTERNAL) -> Reason:
    return Reason(reason) if reason in Reason.__members__ else otherwise


def disclosed(response: Response) -> Response:
    """`response` as its caller may see it: for a customer service, each order's
    failure in the vocabulary's words (changed in place; the response is the call's own).
    """
    if customer_scope() is None:
        return response
    for field, value in response.ListFields():
        if field.message_type is not pb.Order.DESCRIPTOR:
            continue
        for order in value if field.is_repeated else [value]:
            reword_failure(order)
    return response


def reword_failure(order: pb.Order) -> bool:
    """Puts `order`'s failure in the vocabulary's words (in place); whether it has one.

    What a customer service is shown (`disclosed`); an order without a failure is left alone.
    """
    if not shows_failure(order):
        return False
    reason = _in_vocabulary(order.failure.reason)
    order.failure.reason = reason.value
    order.failure.message = reason.summary
    return True


def shows_failure(order: pb.Order) -> bool:
    """Whether `order` says why it failed: what a customer service is told in other words."""
    return bool(order.failure.reason or order.failure.message)


def disclosed_progress(progress: pb.OrderProgress, failure_type: str = "") -> pb.OrderProgress:
    """`progress` as its caller may see it; `failure_type` is the last attempt's reason, if known.

    For a customer service, why the last attempt failed is its reason's standard message.
    """
    if customer_scope() is not None and progress.last_attempt_failure:
        reason = _in_vocabulary(failure_type, _RETRIED_BECAUSE)
        progress.last_attempt_failure = reason.summary
    return progress
