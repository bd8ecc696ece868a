"""The credentials each process of the stack starts with.

Authentication is on under `make run` as anywhere else: every process checks
tokens with the development secret, and the worker and the front door send
tokens of their own (server/devstack/credentials.py). With TLS_MODE=tls or
mtls, each process also serves a certificate of its own from the development
CA (server/devstack/certs.py); under mtls the worker and the front door prove
who they are with theirs, and send no token. Settings the caller
gave explicitly win: the stack then uses theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from server.core import services
from server.devstack.certs import TLS_DIR, ensure_certificates
from server.devstack.credentials import AUTH_DIR, DEFAULT_AUDIENCE, ensure_credentials

# The platform's own processes (the Procfile also runs Temporal and Postgres).
PLATFORM_PROCESSES = tuple(services.PLATFORM_PROCESSES)
# The codec server speaks HTTP, not gRPC: it checks operators' tokens, no certificates.
TOKEN_CHECKERS = (*PLATFORM_PROCESSES, "codec")
# The processes that call services, and the token each sends (its role's).
SERVICE_TOKENS = {p.name: p.role for p in services.PLATFORM_PROCESSES.values() if p.role}
_KEY_SETTINGS = ("JWT_SECRET_FILE", "JWT_PUBLIC_KEY_FILE")
_TLS_SETTINGS = ("TLS_CA_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE")


def security_environment(
    names: Iterable[str],
    base: Mapping[str, str],
    *,
    auth_dir: Path = AUTH_DIR,
    tls_dir: Path = TLS_DIR,
) -> dict[str, dict[str, str]]:
    """Process name -> the variables it gets beyond `base`, making credentials as needed."""
    names = [name for name in names if name in TOKEN_CHECKERS]
    extra: dict[str, dict[str, str]] = {name: {} for name in names}
    auth = base.get("AUTH_ENABLED", "true").lower() not in ("0", "false", "no", "off")
    tls_mode = base.get("TLS_MODE", "off")
    if auth and not any(base.get(key) for key in _KEY_SETTINGS):
        credentials = ensure_credentials(auth_dir, base.get("JWT_AUDIENCE", DEFAULT_AUDIENCE))
        for name in names:
            extra[name]["JWT_SECRET_FILE"] = str(credentials.secret_file)
            if name in SERVICE_TOKENS and tls_mode != "mtls" and not base.get("SERVICE_TOKEN_FILE"):
                token_file = credentials.token_file(SERVICE_TOKENS[name])
                extra[name]["SERVICE_TOKEN_FILE"] = str(token_file)
    if tls_mode != "off" and not any(base.get(key) for key in _TLS_SETTINGS):
        files = ensure_certificates(tls_dir)
        for name in (name for name in names if name in PLATFORM_PROCESSES):
            own = files[services.PLATFORM_PROCESSES[name].certificate]
            extra[name]["TLS_CA_FILE"] = str(own.ca)
            extra[name]["TLS_CERT_FILE"] = str(own.cert)
            extra[name]["TLS_KEY_FILE"] = str(own.key)
    return extra
