"""Reading keys, certificates and tokens from the files the settings name.

Secrets never come from code: each setting names a file (a mounted secret
in production, a file under .data/ in development). A file that cannot be
read stops the process with a message naming the setting.
"""

from __future__ import annotations

from pathlib import Path


def read_secret(variable: str, path: str | None) -> bytes | None:
    """The file's bytes (None when the setting is unset); exits when it cannot be read."""
    if not path:
        return None
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        raise SystemExit(f"{variable}: cannot read {path}: {error.strerror}") from None
    if not content.strip():
        raise SystemExit(f"{variable}: {path} is empty")
    return content


def require_secret(variable: str, path: str | None, why: str) -> bytes:
    content = read_secret(variable, path)
    if content is None:
        raise SystemExit(f"{variable} must be set: {why}")
    return content
