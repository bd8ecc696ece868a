"""Who may read customer data through the codec server: a caller with the operator role.

The codec server (server/codec_server.py) speaks HTTP to the Temporal UI and
CLI, not gRPC, so it asks this one question of a request's `Authorization`
header. The answer comes from the signed tokens every gRPC service accepts
(server/core/auth): a token whose `role` is `operator`, checked with the
same JWT_SECRET_FILE or JWT_PUBLIC_KEY_FILE. Under `make run`, that is
`.data/auth/operator.token`.
"""

from __future__ import annotations

from clients.errors import Error
from server.core.auth import Role, token_verifier
from server.core.auth.guard import bearer_token
from server.core.auth.tokens import TokenVerifier
from server.core.settings import Settings


class OperatorCheck:
    def __init__(self, tokens: TokenVerifier | None, *, unchecked: bool = False) -> None:
        if tokens is None and not unchecked:
            raise ValueError("an operator check needs a token verifier")
        self._tokens = tokens

    def is_operator(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header carries a valid token with the operator role."""
        if self._tokens is None:  # AUTH_ENABLED=false: nothing is checked anywhere
            return True
        token = bearer_token(authorization or "")
        if not token:
            return False
        try:
            identity = self._tokens.verify(token)
        except Error:
            return False
        return identity.role == Role.OPERATOR


def operator_check(settings: Settings) -> OperatorCheck:
    """The check of the settings; without a way to verify tokens, the process stops."""
    if not settings.auth_enabled:
        return OperatorCheck(None, unchecked=True)
    tokens = token_verifier(settings)
    if tokens is None:
        raise SystemExit(
            "the codec server admits operators by their tokens: set JWT_SECRET_FILE or "
            "JWT_PUBLIC_KEY_FILE (or AUTH_ENABLED=false)"
        )
    return OperatorCheck(tokens)
