"""Who may call what: the one table of the platform, keyed by full method name.

Every method of every service is listed; a method missing from the table is
refused to everyone (tests/security checks that none is missing). Health
checks need no credentials; reflection needs a caller with any role.

A CUSTOMER_SERVICE caller acts for the one customer named in its token: the
order service limits what it creates, reads, watches and changes to that
customer's orders (`customer_scope`: server/orders/placing.py, reads.py, servicer.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from server.core.auth.identity import Role

CUSTOMER_SERVICE, OPERATOR, WORKER, FRONT_DOOR = (
    Role.CUSTOMER_SERVICE,
    Role.OPERATOR,
    Role.WORKER,
    Role.FRONT_DOOR,
)


@dataclass(frozen=True)
class Access:
    """The roles that may call a method; `public`: anyone, without credentials."""

    roles: frozenset[Role]
    public: bool = False

    def allows(self, role: Role | None) -> bool:
        return role in self.roles


def only(*roles: Role) -> Access:
    return Access(frozenset(roles))


PUBLIC = Access(frozenset(), public=True)
ANY_ROLE = Access(frozenset(Role))
NOBODY = Access(frozenset())

_ORDERS = "/orders.v1.OrderService/"
_PAYMENTS = "/payments.v1.PaymentService/"
_INVENTORY = "/inventory.v1.InventoryService/"
_SHIPPING = "/shipping.v1.ShippingService/"
_OPERATOR = "/operator.v1.OperatorService/"

# fmt: off
TABLE: Mapping[str, Access] = MappingProxyType({
    # The front door. Customer services: their own customer's orders only.
    _ORDERS + "CreateOrder":               only(CUSTOMER_SERVICE, OPERATOR),
    _ORDERS + "GetOrder":                  only(CUSTOMER_SERVICE, OPERATOR),
    _ORDERS + "ListOrders":                only(CUSTOMER_SERVICE, OPERATOR),
    _ORDERS + "WatchOrder":                only(CUSTOMER_SERVICE, OPERATOR),
    _ORDERS + "CancelOrder":               only(CUSTOMER_SERVICE, OPERATOR),
    _ORDERS + "UpdateShippingAddress":     only(CUSTOMER_SERVICE, OPERATOR),
    # The carrier's delivery report, relayed by an operator.
    _ORDERS + "ConfirmDelivery":           only(OPERATOR),

    # The people running the platform: finding the orders that need them,
    # and repairing them (server/orders/operations.py).
    _OPERATOR + "SearchOrders":            only(OPERATOR),
    _OPERATOR + "GetOrderDetail":          only(OPERATOR),
    _OPERATOR + "RetryStep":               only(OPERATOR),
    _OPERATOR + "CancelAndCompensate":     only(OPERATOR),
    _OPERATOR + "MarkResolved":            only(OPERATOR),

    # Money moves only as a step of an order's saga.
    _PAYMENTS + "Charge":                  only(WORKER),
    _PAYMENTS + "Refund":                  only(WORKER),
    # The front door trades a card token for a payment method before it
    # starts an order, so the token never enters the workflow.
    _PAYMENTS + "CreatePaymentMethod":     only(FRONT_DOOR),
    _PAYMENTS + "GetPayment":              only(WORKER, OPERATOR),
    # The front door lists what an order whose workflow was ended from
    # outside still holds (server/orders/abandoned.py); so for stock and parcels.
    _PAYMENTS + "ListPayments":            only(FRONT_DOOR, WORKER, OPERATOR),

    # The catalog is the operator's; stock moves only as a step of a saga.
    _INVENTORY + "SetStock":               only(OPERATOR),
    _INVENTORY + "GetStock":               only(FRONT_DOOR, WORKER, OPERATOR),
    _INVENTORY + "BatchGetStock":          only(FRONT_DOOR, WORKER, OPERATOR),
    _INVENTORY + "ReserveStock":           only(WORKER),
    _INVENTORY + "CommitReservation":      only(WORKER),
    _INVENTORY + "ReleaseReservation":     only(WORKER),
    _INVENTORY + "GetReservation":         only(FRONT_DOOR, WORKER, OPERATOR),

    # Parcels are booked and cancelled only as a step of a saga.
    _SHIPPING + "CreateShipment":          only(WORKER),
    # The worker moves a booking when the order's address changed after it.
    _SHIPPING + "RebookShipment":          only(WORKER),
    _SHIPPING + "CancelShipment":          only(WORKER),
    _SHIPPING + "GetShipment":             only(FRONT_DOOR, WORKER, OPERATOR),
})
# fmt: on

# Infrastructure every server carries, by method prefix.
_BY_PREFIX: tuple[tuple[str, Access], ...] = (
    ("/grpc.health.v1.Health/", PUBLIC),
    ("/grpc.reflection.", ANY_ROLE),
)


def access_for(method: str) -> Access:
    """Who may call `method` ("/package.Service/Method"); nobody when it is not listed."""
    access = TABLE.get(method)
    if access is not None:
        return access
    for prefix, by_prefix in _BY_PREFIX:
        if method.startswith(prefix):
            return by_prefix
    return NOBODY
