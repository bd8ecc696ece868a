"""Checks every call against the table: who is calling (authentication), and may it (authorization).

A bearer token (`authorization: Bearer <JWT>`) names the caller when there is
one; otherwise, under mutual TLS, its certificate does. No credentials:
UNAUTHENTICATED. A role the method's entry does not list: PERMISSION_DENIED.
Both carry the ErrorInfo of clients/errors.py, through the shared interceptor.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from clients.errors import Error, Reason
from server.core.auth.identity import UNCHECKED, Identity
from server.core.auth.peer import peer_identity
from server.core.auth.policy import Access
from server.core.auth.tokens import TokenVerifier, unauthenticated

_BEARER = "bearer "


class Guard:
    """Authenticates and authorizes calls; `Guard.off()` lets every call through."""

    def __init__(
        self, *, tokens: TokenVerifier | None, certificates: bool, enabled: bool = True
    ) -> None:
        self._tokens = tokens
        self._certificates = certificates
        self.enabled = enabled

    @classmethod
    def off(cls) -> Guard:
        return cls(tokens=None, certificates=False, enabled=False)

    def check(
        self,
        method: str,
        access: Access,
        context: grpc.aio.ServicerContext,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> Identity:
        """The caller of this call, if it may call `method`; raises the error to answer if not.

        `metadata` is the call's, when the caller has it at hand already.
        """
        if access.public or not self.enabled:
            return UNCHECKED
        identity = self.authenticate(context, metadata)
        if not access.allows(identity.role):
            raise Error(
                Reason.PERMISSION_DENIED,
                f"{identity.describe()} may not call {method}",
                {"method": method, "role": identity.role or ""},
            )
        return identity

    def authenticate(
        self,
        context: grpc.aio.ServicerContext,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> Identity:
        token = _bearer_token(context.invocation_metadata() if metadata is None else metadata)
        if token is not None:
            if self._tokens is None:
                raise unauthenticated("this server accepts no bearer tokens; use a certificate")
            return self._tokens.verify(token)
        if self._certificates:
            identity = peer_identity(context)
            if identity is not None:
                return identity
        raise unauthenticated(
            "no credentials: send `authorization: Bearer <token>`"
            + (" or a client certificate" if self._certificates else "")
        )


def _bearer_token(metadata: object) -> str | None:
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == "authorization":
            token = bearer_token(value) if isinstance(value, str) else None
            if token is not None:
                return token
            raise unauthenticated("the authorization header must be `Bearer <token>`")
    return None


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None for any other scheme."""
    if authorization[: len(_BEARER)].lower() != _BEARER:
        return None
    return authorization[len(_BEARER) :].strip()
