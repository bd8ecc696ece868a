"""What a process presents and checks on the wire, from its settings.

A service serves TLS_CERT_FILE/TLS_KEY_FILE when TLS_MODE is tls or mtls, and
under mtls asks every caller for a certificate signed by TLS_CA_FILE. The
worker and the front door call services with `caller_credentials`: over TLS
checked against TLS_CA_FILE, presenting their own certificate under mtls,
and sending SERVICE_TOKEN_FILE as their bearer token when it is set.
"""

from __future__ import annotations

import grpc

from clients.channels import CallerCredentials, TokenFile
from server.core.secrets import read_secret, require_secret
from server.core.settings import Settings


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The credentials a service listens with; None for plaintext (TLS_MODE=off)."""
    if settings.tls_mode == "off":
        return None
    why = f"TLS_MODE is {settings.tls_mode}"
    cert = require_secret("TLS_CERT_FILE", settings.tls_cert_file, why)
    key = require_secret("TLS_KEY_FILE", settings.tls_key_file, why)
    if settings.tls_mode == "tls":
        return grpc.ssl_server_credentials([(key, cert)])
    ca = require_secret("TLS_CA_FILE", settings.tls_ca_file, "mtls checks callers' certificates")
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


def caller_credentials(settings: Settings, caller: str) -> CallerCredentials:
    """How `caller` (the worker, the front door) proves who it is on its calls."""
    token = TokenFile(settings.service_token_file) if settings.service_token_file else None
    if token is not None:
        read_secret("SERVICE_TOKEN_FILE", settings.service_token_file)  # fail now, not per call
    elif settings.auth_enabled and settings.tls_mode != "mtls":
        raise SystemExit(
            f"SERVICE_TOKEN_FILE must be set: the {caller} calls services that require "
            "credentials (or use TLS_MODE=mtls, or AUTH_ENABLED=false)"
        )
    if settings.tls_mode == "off":
        return CallerCredentials(token=token)
    # Unset: the servers' certificates are checked against the system's CAs.
    ca = read_secret("TLS_CA_FILE", settings.tls_ca_file)
    if settings.tls_mode == "tls":
        return CallerCredentials(tls=True, root_certificates=ca, token=token)
    why = "under mtls the caller presents its certificate"
    return CallerCredentials(
        tls=True,
        root_certificates=ca,
        certificate_chain=require_secret("TLS_CERT_FILE", settings.tls_cert_file, why),
        private_key=require_secret("TLS_KEY_FILE", settings.tls_key_file, why),
        token=token,
    )
