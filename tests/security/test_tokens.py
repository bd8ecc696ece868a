"""Bearer tokens: what proves an identity, and what does not."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from clients.errors import Error, Reason
from server.core.auth import Role
from server.core.auth.tokens import TokenVerifier, VerificationKeys, mint_token

SECRET = b"s" * 32
AUDIENCE = "order-platform"


def verifier(keys: VerificationKeys | None = None, **options: object) -> TokenVerifier:
    return TokenVerifier(keys or VerificationKeys(secret=SECRET), audience=AUDIENCE, **options)  # type: ignore[arg-type]


def token(key: object = SECRET, **overrides: object) -> str:
    claims: dict[str, object] = {
        "subject": "w-1",
        "role": Role.WORKER,
        "audience": AUDIENCE,
        "lifetime_seconds": 600,
    }
    claims.update(overrides)
    return mint_token(key, **claims)  # type: ignore[arg-type]


def refused(verify: TokenVerifier, raw: str) -> Error:
    with pytest.raises(Error) as raised:
        verify.verify(raw)
    assert raised.value.reason is Reason.UNAUTHENTICATED
    return raised.value


def test_a_good_token_names_its_subject_and_role() -> None:
    identity = verifier().verify(token())
    assert (identity.subject, identity.role, identity.customer_id) == ("w-1", Role.WORKER, None)


def test_a_customer_service_token_carries_its_customer() -> None:
    raw = token(role=Role.CUSTOMER_SERVICE, customer_id="cust-7")
    assert verifier().verify(raw).customer_id == "cust-7"
    refused(verifier(), token(role=Role.CUSTOMER_SERVICE))


def test_expired_badly_signed_and_foreign_tokens_are_refused() -> None:
    assert "expired" in refused(verifier(), token(now=time.time() - 3600)).message
    refused(verifier(), token(key=b"x" * 32))
    refused(verifier(), token(audience="another-platform"))
    refused(verifier(issuer="https://issuer.example"), token())
    refused(verifier(), "not-a-token")
    unsigned = jwt.encode(
        {"sub": "w", "role": "worker", "aud": AUDIENCE, "exp": 2**40}, None, "none"
    )
    refused(verifier(), unsigned)


def test_a_token_without_expiry_or_with_an_unknown_role_is_refused() -> None:
    no_exp = jwt.encode({"sub": "w", "role": "worker", "aud": AUDIENCE}, SECRET, "HS256")
    refused(verifier(), no_exp)
    refused(
        verifier(), jwt.encode({"sub": "w", "role": "root", "aud": AUDIENCE, "exp": 2**40}, SECRET)
    )


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    verify = verifier(leeway_seconds=0)
    raw = token(lifetime_seconds=60)
    assert verify.verify(raw).role is Role.WORKER
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    refused(verify, raw)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_public_keys_check_tokens_signed_with_their_private_half(algorithm: str) -> None:
    private = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ES256"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verify = verifier(VerificationKeys.from_pem(None, public_pem))
    assert verify.verify(token(key=private, algorithm=algorithm)).role is Role.WORKER
    # A shared-secret token proves nothing to a service that holds only a public key.
    assert "not accepted" in refused(verify, token()).message


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        VerificationKeys.from_pem(b"short", None)
