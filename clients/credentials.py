"""Credentials from what a person or a deployment has at hand: a token, files, a CA."""

from __future__ import annotations

from pathlib import Path

from clients.channels import CallerCredentials, TokenFile, TokenSource


def caller_credentials(
    *,
    token: str | None = None,
    token_file: str | Path | None = None,
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    tls: bool = False,
) -> CallerCredentials:
    """Credentials that send a bearer token and, when any TLS file is given, speak TLS.

    `token_file` is re-read whenever it changes, so a rotated token is picked
    up without a restart. `cert_file` and `key_file` (the caller's own
    certificate, for mutual TLS) go together; `ca_file` checks the servers
    (the system's CAs without it).
    """
    if token and token_file:
        raise ValueError("give a token or a token file, not both")
    if bool(cert_file) != bool(key_file):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    source: TokenSource | None = None
    if token:
        fixed = token.strip()
        source = lambda: fixed  # noqa: E731
    elif token_file:
        source = TokenFile(token_file)
    return CallerCredentials(
        tls=tls or bool(ca_file or cert_file),
        root_certificates=Path(ca_file).read_bytes() if ca_file else None,
        certificate_chain=Path(cert_file).read_bytes() if cert_file else None,
        private_key=Path(key_file).read_bytes() if key_file else None,
        token=source,
    )
