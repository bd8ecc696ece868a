"""Who a caller is under mutual TLS: the role its certificate names.

The TLS handshake has already checked the certificate against TLS_CA_FILE;
what is left is to read the role from its URI SAN
(`order-platform://role/worker`), which gRPC exposes as `peer_uri`.
"""

from __future__ import annotations

import grpc

from server.core.auth.identity import ROLE_URI_PREFIX, Identity, Role


def peer_identity(context: grpc.aio.ServicerContext) -> Identity | None:
    """The identity of the certificate the caller presented; None without one."""
    auth = context.auth_context()
    if not auth.get("x509_subject"):
        return None
    subject = b",".join(auth.get("x509_common_name") or auth["x509_subject"]).decode()
    for uri in auth.get("peer_uri", ()):
        text = uri.decode(errors="replace")
        if text.startswith(ROLE_URI_PREFIX):
            try:
                return Identity(subject=subject, role=Role(text.removeprefix(ROLE_URI_PREFIX)))
            except ValueError:
                break
    # A certificate the CA signed, but for no role: known, and allowed nothing.
    return Identity(subject=subject, role=None)
