"""Who is an operator: the bearer of the operator token.

The codec server (server/codec_server.py) lets whoever it serves read
customer data out of Temporal histories, so it asks for this token. One
shared secret is the simplest identity that works; `is_operator` is the one
question the codec server asks, so that a per-person identity (signed tokens
carrying a role) can answer it instead without touching the server.

The token comes from OPERATOR_TOKEN, else from the file OPERATOR_TOKEN_FILE;
with neither, a development token is generated on first use under
.data/secrets/operator-token.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from server.core.keyring import DEVELOPMENT_SECRETS_DIR, development_secret
from server.core.settings import Settings

DEVELOPMENT_TOKEN_NAME = "operator-token"
# Shorter tokens are refused: guessing must stay out of reach.
MIN_TOKEN_LENGTH = 24


class OperatorToken:
    def __init__(self, token: str) -> None:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the operator token must be at least {MIN_TOKEN_LENGTH} characters")
        self._expected = f"Bearer {token}".encode()

    def is_operator(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value carries the operator token."""
        if not authorization:
            return False
        # Compared in constant time: no timing tells how much of a guess was right.
        return hmac.compare_digest(authorization.strip().encode(), self._expected)


def operator_token(settings: Settings) -> OperatorToken:
    """The operator token of the settings; a missing or short one stops the process."""
    if settings.operator_token:
        token, source = settings.operator_token.get_secret_value(), "OPERATOR_TOKEN"
    elif settings.operator_token_file:
        source = f"OPERATOR_TOKEN_FILE={settings.operator_token_file}"
        try:
            token = Path(settings.operator_token_file).read_text()
        except OSError as error:
            raise SystemExit(f"invalid settings:\n  {source}: {error.strerror}") from None
    else:
        token = development_secret(DEVELOPMENT_TOKEN_NAME, lambda: secrets.token_urlsafe(32) + "\n")
        source = str(DEVELOPMENT_SECRETS_DIR / DEVELOPMENT_TOKEN_NAME)
    try:
        return OperatorToken(token.strip())
    except ValueError as error:
        raise SystemExit(f"invalid settings:\n  {source}: {error}") from None
