"""Calling as a role the table allows, for tests about something else than authorization."""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from clients.channels import authorizing
from server.core.auth import Role, access_for

# The role chosen when several may call a method.
_PREFERENCE = (Role.OPERATOR, Role.WORKER, Role.FRONT_DOOR)


def permitted_role(method: str) -> Role:
    """A role that may call `method` ("/package.Service/Method")."""
    roles = access_for(method).roles
    return next(role for role in _PREFERENCE if role in roles)


def token_per_method(tokens: Mapping[Role, str]) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that send, on each call, the token of a role that may make it."""

    def token(method: str) -> str:
        if method.startswith("/grpc.health."):
            return ""
        return tokens[permitted_role(method)]

    return authorizing(token)
