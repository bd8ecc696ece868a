"""Named AES-256 keys, one of them current, read from settings or a file.

A keyring is JSON: `{"current": "<key id>", "keys": {"<key id>": "<base64 of 32 bytes>"}}`.
New data is encrypted under the current key and records its key id; data
under any other key in the ring still decrypts. That is what makes a key
rotation safe: add a key, make it current, and drop an old one only once
nothing encrypted under it is still read.

In production the ring comes from a setting (the JSON itself, e.g. from a
secret store) or from a file the deployment mounts. With neither set, a
development ring is generated on first use under `.data/secrets/` of the
checkout, so that `make run` and the tests need no setup; the process says so
in its log.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

KEY_BYTES = 32  # AES-256
# Development secrets (git-ignored, like the rest of .data/).
DEVELOPMENT_SECRETS_DIR = Path(__file__).resolve().parents[2] / ".data" / "secrets"


class KeyringError(ValueError):
    """A keyring that cannot be used; the message names the setting to fix."""


@dataclass(frozen=True)
class Keyring:
    current_id: str
    keys: dict[str, bytes]

    @property
    def current_key(self) -> bytes:
        return self.keys[self.current_id]


def generate_keyring(key_id: str | None = None) -> str:
    """The JSON text of a new keyring with one random key."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    return json.dumps({"current": key_id, "keys": {key_id: key}}, indent=2) + "\n"


def parse_keyring(text: str, *, source: str) -> Keyring:
    """Reads keyring JSON; `source` names where it came from, for the error message."""
    try:
        document = json.loads(text)
        current = document["current"]
        encoded = document["keys"]
        if not isinstance(current, str) or not isinstance(encoded, dict):
            raise TypeError("'current' must be a key id and 'keys' an object")
        keys = {
            str(key_id): base64.b64decode(value, validate=True) for key_id, value in encoded.items()
        }
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise KeyringError(
            f"{source}: not a keyring ({error}); expected "
            '{"current": "<key id>", "keys": {"<key id>": "<base64 of 32 bytes>"}}'
        ) from None
    if current not in keys:
        raise KeyringError(f"{source}: the current key {current!r} is not among its keys")
    short = sorted(key_id for key_id, key in keys.items() if len(key) != KEY_BYTES)
    if short:
        raise KeyringError(f"{source}: keys {short} are not {KEY_BYTES} bytes (AES-256)")
    return Keyring(current, keys)


def development_secret(name: str, generate: Callable[[], str]) -> str:
    """The development secret `name` under .data/secrets/, created on first use.

    Processes of the stack start together: the file is written aside and
    linked into place, so that exactly one version wins and all read that one.
    """
    path = DEVELOPMENT_SECRETS_DIR / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        aside.write_text(generate())
        aside.chmod(0o600)
        try:
            os.link(aside, path)
            log.warning(
                "generated a development secret; set a real one in production", path=str(path)
            )
        except FileExistsError:
            pass  # another process made it first
        finally:
            aside.unlink()
    return path.read_text()


def load_keyring(
    inline: str | None, path: str | None, *, setting: str, development_name: str
) -> Keyring:
    """The keyring from `<setting>` (JSON), else from `<setting>_FILE`, else the development one."""
    if inline:
        return parse_keyring(inline, source=setting)
    if path:
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise KeyringError(
                f"{setting}_FILE={path}: cannot read it ({error.strerror})"
            ) from None
        return parse_keyring(text, source=f"{setting}_FILE={path}")
    text = development_secret(development_name, lambda: generate_keyring("dev1"))
    return parse_keyring(text, source=str(DEVELOPMENT_SECRETS_DIR / development_name))
