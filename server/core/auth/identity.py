"""Who is calling: the roles the platform knows, and the caller of the call in progress."""

from __future__ import annotations

import enum
from contextvars import ContextVar
from dataclasses import dataclass

# A certificate names its holder's role as a URI SAN, e.g. order-platform://role/worker.
ROLE_URI_PREFIX = "order-platform://role/"


class Role(enum.StrEnum):
    """What a caller is, as its token's `role` claim or its certificate's role URI say."""

    # A shop's own service acting for one customer (the token's customer_id).
    CUSTOMER_SERVICE = "customer-service"
    # A person running the platform: the catalog, every customer's orders.
    OPERATOR = "operator"
    # The order worker: the only caller that moves money, stock and parcels.
    WORKER = "worker"
    # The orders service, calling the catalog to price an order.
    FRONT_DOOR = "front-door"


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller (or, with authentication off, nobody in particular)."""

    subject: str
    role: Role | None
    # Set for CUSTOMER_SERVICE, and only for it: the one customer it acts for.
    customer_id: str | None = None
    # False only when authentication is off: then nothing is restricted.
    checked: bool = True

    def describe(self) -> str:
        return f"{self.subject} ({self.role or 'no role'})"


# What a call runs as when the server checks nobody (AUTH_ENABLED=false, health checks).
UNCHECKED = Identity(subject="", role=None, checked=False)

_CALLER: ContextVar[Identity] = ContextVar("caller", default=UNCHECKED)


def caller() -> Identity:
    """The caller of the call being handled; set by the server's interceptor."""
    return _CALLER.get()


def customer_scope() -> str | None:
    """The only customer the current caller may act for; None when it may act for any."""
    identity = _CALLER.get()
    return identity.customer_id if identity.role is Role.CUSTOMER_SERVICE else None


def calling_as(identity: Identity) -> object:
    """Makes `identity` the current caller; returns the token to `restore` with."""
    return _CALLER.set(identity)


def restore(token: object) -> None:
    _CALLER.reset(token)  # type: ignore[arg-type]
