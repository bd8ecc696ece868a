"""Bearer tokens: JWTs with `sub`, `role`, `aud`, `exp` (and `customer_id` for a customer service).

Signed with a shared secret (HS256) or a private key whose public half the
services hold (ES256, RS256). Verified tokens are remembered until they
expire, so a caller that sends the same token on every call pays for its
signature once, not on every GetOrder.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from clients.errors import Error, Reason
from server.core.auth.identity import Identity, Role

HMAC_ALGORITHM = "HS256"
# Verified tokens kept; past this many the memory starts over.
_REMEMBERED = 4096


def unauthenticated(why: str) -> Error:
    return Error(Reason.UNAUTHENTICATED, why)


@dataclass(frozen=True)
class VerificationKeys:
    """What signatures are accepted: a shared secret, a public key, or both."""

    secret: bytes | None = None
    public_key: EllipticCurvePublicKey | RSAPublicKey | None = None

    @classmethod
    def from_pem(cls, secret: bytes | None, public_pem: bytes | None) -> VerificationKeys:
        public_key = None
        if public_pem is not None:
            loaded = load_pem_public_key(public_pem)
            if not isinstance(loaded, EllipticCurvePublicKey | RSAPublicKey):
                raise ValueError("the public key must be an EC (ES256) or RSA (RS256) key")
            public_key = loaded
        if secret is not None and len(secret) < 32:
            raise ValueError("the secret must be at least 32 bytes")
        return cls(secret, public_key)

    def key_for(self, algorithm: str) -> Any:
        """The key that checks a signature made with `algorithm`, or None."""
        if algorithm == HMAC_ALGORITHM:
            return self.secret
        if algorithm == "ES256" and isinstance(self.public_key, EllipticCurvePublicKey):
            return self.public_key
        if algorithm == "RS256" and isinstance(self.public_key, RSAPublicKey):
            return self.public_key
        return None


class TokenVerifier:
    def __init__(
        self,
        keys: VerificationKeys,
        *,
        audience: str,
        issuer: str | None = None,
        leeway_seconds: float = 30.0,
    ) -> None:
        self._keys = keys
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway_seconds
        self._verified: dict[str, tuple[Identity, float]] = {}

    def verify(self, token: str) -> Identity:
        """The identity a token proves; UNAUTHENTICATED when it proves nothing."""
        remembered = self._verified.get(token)
        if remembered is not None:
            identity, expires = remembered
            if time.time() <= expires + self._leeway:
                return identity
            del self._verified[token]
            raise unauthenticated("the token has expired")
        identity, expires = self._check(token)
        if len(self._verified) >= _REMEMBERED:
            self._verified.clear()
        self._verified[token] = (identity, expires)
        return identity

    def _check(self, token: str) -> tuple[Identity, float]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg", "")
            key = self._keys.key_for(algorithm)
            if key is None:
                raise unauthenticated(f"tokens signed with {algorithm!r} are not accepted")
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "role", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("the token has expired") from None
        except jwt.InvalidTokenError as error:
            raise unauthenticated(f"the token is not valid: {error}") from None
        return _identity(claims), float(claims["exp"])


def _identity(claims: Mapping[str, Any]) -> Identity:
    try:
        role = Role(claims["role"])
    except ValueError:
        raise unauthenticated(f"the token's role {claims['role']!r} is unknown") from None
    customer_id = claims.get("customer_id")
    if role is Role.CUSTOMER_SERVICE:
        if not isinstance(customer_id, str) or not customer_id:
            raise unauthenticated("a customer-service token must name its customer_id")
    else:
        customer_id = None
    return Identity(subject=str(claims["sub"]), role=role, customer_id=customer_id)


def mint_token(
    key: Any,
    *,
    subject: str,
    role: Role,
    audience: str,
    lifetime_seconds: float,
    customer_id: str | None = None,
    issuer: str | None = None,
    algorithm: str = HMAC_ALGORITHM,
    now: float | None = None,
) -> str:
    """A signed token; for development and tests (production tokens come from an issuer)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role.value,
        "aud": audience,
        "iat": issued,
        "exp": issued + int(lifetime_seconds),
    }
    if customer_id is not None:
        claims["customer_id"] = customer_id
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, key, algorithm=algorithm)
