"""The order workflow as its callers see it: its name, input, result and messages.

What the front door needs to start the workflow and talk to it, and nothing
of how it works: no activities, no workflow code, so a caller that imports it
loads neither. Callers use the names with the Temporal client (a workflow, an
update or a query named by a string, decoded into `result_type`); the
workflow declares its handlers under the same names (worker/workflows.py), so
the two cannot drift. tests/unit/test_workflow_contract.py holds the
handlers' argument and result types to the ones listed here.

Nothing here has side effects: the workflow sandbox imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from clients.proto.orders.v1 import orders_pb2
from worker.model import Address, OrderInput, Progress

R = TypeVar("R")

# The workflow type; one run per order, under the order's id.
NAME = "OrderWorkflow"
INPUT_TYPE = OrderInput
RESULT_TYPE = orders_pb2.Order


@dataclass(frozen=True)
class Update(Generic[R]):
    """An update of the workflow: its name, its arguments, and the type of its answer."""

    name: str
    result_type: type[R]
    arg_types: tuple[type, ...] = ()


@dataclass(frozen=True)
class Query(Generic[R]):
    """A query of the workflow: its name and the type of its answer."""

    name: str
    result_type: type[R]


@dataclass(frozen=True)
class Signal:
    """A signal to the workflow: its name and its arguments."""

    name: str
    arg_types: tuple[type, ...] = ()


# ----------------------------------------------------------------- updates

# Returns the order once stored. Sent by the front doors of before orders were
# stored at start (update-with-start), with the request's fingerprint.
ACCEPT = Update("accept", orders_pb2.Order, (str,))
# Cancels an order whose changes are not fenced, with a reason; returns it
# once CANCELLING is stored.
CANCEL = Update("cancel", orders_pb2.Order, (str,))
# Changes the address of an order whose changes are not fenced.
UPDATE_SHIPPING_ADDRESS = Update("update_shipping_address", orders_pb2.Order, (Address,))
# The carrier's delivery report; returns the order once DELIVERED is stored.
CONFIRM_DELIVERY = Update("confirm_delivery", orders_pb2.Order)

# ----------------------------------------------------------------- queries

# The order as the workflow has it now.
ORDER = Query("order", orders_pb2.Order)
# What the workflow is doing now: the step, its attempt, the compensations.
PROGRESS = Query("progress", Progress)

# ----------------------------------------------------------------- signals

# A cancellation the front door has taken and stored (server/orders/changes.py),
# with its reason.
CANCEL_ORDER = Signal("cancel_order", (str,))
# An operator asks the workflow to try now the step or compensation it is
# pausing before retrying (OperatorService.RetryStep).
RETRY_NOW = Signal("retry_now")
# From the order's delivery-tracking workflow (worker/tracking.py), not from
# the front door: no delivery report in the allowed time.
DELIVERY_OVERDUE = Signal("delivery_overdue")

UPDATES = (ACCEPT, CANCEL, UPDATE_SHIPPING_ADDRESS, CONFIRM_DELIVERY)
QUERIES = (ORDER, PROGRESS)
SIGNALS = (CANCEL_ORDER, RETRY_NOW, DELIVERY_OVERDUE)
