"""Identity and authorization on every call: roles, the per-method table, tokens, certificates.

`policy.TABLE` says which roles may call which method; `Guard` checks each
call against it (the shared server interceptor asks it first) and makes the
caller available to the handler as `caller()` / `customer_scope()`.
`load_guard` builds it from the settings.
"""

from server.core.auth.guard import Guard
from server.core.auth.identity import Identity, Role, caller, customer_scope
from server.core.auth.policy import TABLE, Access, access_for
from server.core.auth.setup import load_guard, token_verifier

__all__ = [
    "TABLE",
    "Access",
    "Guard",
    "Identity",
    "Role",
    "access_for",
    "caller",
    "customer_scope",
    "load_guard",
    "token_verifier",
]
