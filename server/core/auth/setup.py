"""The Guard a service runs with, from its settings."""

from __future__ import annotations

from server.core.auth.guard import Guard
from server.core.auth.tokens import TokenVerifier, VerificationKeys
from server.core.secrets import read_secret
from server.core.settings import Settings


def load_guard(settings: Settings) -> Guard:
    """Exits with a message when authentication is on but nothing could prove an identity."""
    if not settings.auth_enabled:
        return Guard.off()
    certificates = settings.tls_mode == "mtls"
    tokens = token_verifier(settings)
    if tokens is None and not certificates:
        raise SystemExit(
            "authentication is on (AUTH_ENABLED) but nothing can prove who calls: set "
            "JWT_SECRET_FILE or JWT_PUBLIC_KEY_FILE, or TLS_MODE=mtls"
        )
    return Guard(tokens=tokens, certificates=certificates)


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """What checks bearer tokens (JWT_SECRET_FILE or JWT_PUBLIC_KEY_FILE); None without either."""
    secret = read_secret("JWT_SECRET_FILE", settings.jwt_secret_file)
    public_pem = read_secret("JWT_PUBLIC_KEY_FILE", settings.jwt_public_key_file)
    if secret is None and public_pem is None:
        return None
    try:
        keys = VerificationKeys.from_pem(secret.strip() if secret else None, public_pem)
    except ValueError as error:
        raise SystemExit(f"JWT_SECRET_FILE / JWT_PUBLIC_KEY_FILE: {error}") from None
    return TokenVerifier(
        keys,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway_seconds=settings.jwt_leeway_seconds,
    )
