"""Calling as a role the table allows, for tests about something else than authorization."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc

from server.core.auth import Role, access_for

# The role chosen when several may call a method.
_PREFERENCE = (Role.OPERATOR, Role.WORKER, Role.FRONT_DOOR)


def permitted_role(method: str) -> Role:
    """A role that may call `method` ("/package.Service/Method")."""
    roles = access_for(method).roles
    return next(role for role in _PREFERENCE if role in roles)


class TokenPerMethod(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Sends, on each call, the token of a role that may make it."""

    def __init__(self, tokens: Mapping[Role, str]) -> None:
        self._tokens = tokens

    def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if not method.startswith("/grpc.health."):
            metadata["authorization"] = f"Bearer {self._tokens[permitted_role(method)]}"
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)
