"""Payload encryption: what Temporal stores of ours is AES-256-GCM ciphertext.

Every payload a client or worker of the project sends to Temporal (workflow
inputs, activity arguments and results, heartbeat details, queries, updates,
signals, failure details) is serialized whole, metadata included, and
encrypted under the keyring's current key with a fresh 96-bit nonce. The
stored payload says only `binary/encrypted`, which key (`encryption-key-id`)
and the nonce (`encryption-nonce`, kept in metadata so that the ciphertext is
the payload's data as the cipher returns it, without another copy).

Decoding goes by each payload's own metadata: a payload under an older key
of the ring still decodes (key rotation). An unknown key id or a ciphertext
that fails authentication is an error, never a silent pass-through.

A payload that is not encrypted at all was not made by the platform: anyone
who reaches Temporal can send one. The front door and the worker decode
strictly: such a payload becomes an `UNAUTHENTICATED_ENCODING` marker with
its content dropped, which the project's payload converter refuses
(server/core/payloads.py); the few constants the Temporal server writes
itself pass as they are. That refusal is an ApplicationError, so the SDK
fails a forged workflow at its start, rejects a forged update and drops a
forged signal, rather than failing workflow tasks over and over. The codec
server decodes leniently, so that operators can still read such a payload.

The same functions serve the codec server (server/codec_server.py), which
lets operators read histories in the Temporal UI and CLI.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from server.core.keyring import Keyring

ENCODING = b"binary/encrypted"
# What a strict decode makes of a payload that was not encrypted.
UNAUTHENTICATED_ENCODING = b"binary/unauthenticated"
# Payloads the Temporal server writes itself, and so never encrypted: the
# details of an activity cancelled while no attempt ran (an arrange_shipping
# waiting to retry when its order is cancelled). Each is one constant, which
# nobody can make carry anything else.
_SERVER_WRITTEN = frozenset({(b"json/plain", b'"ACTIVITY_ID_NOT_STARTED"')})
NONCE_BYTES = 12


class PayloadDecryptionError(ValueError):
    """An encrypted payload that this process cannot decrypt."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: Keyring, *, strict: bool = True) -> None:
        self._strict = strict
        self._current_id = keyring.current_id.encode()
        self._current = AESGCM(keyring.current_key)
        self._ciphers = {key_id.encode(): AESGCM(key) for key_id, key in keyring.keys.items()}

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        return Payload(
            metadata={
                "encoding": ENCODING,
                "encryption-key-id": self._current_id,
                "encryption-nonce": nonce,
            },
            data=self._current.encrypt(nonce, payload.SerializeToString(), None),
        )

    def decrypt(self, payload: Payload) -> Payload:
        metadata = payload.metadata
        if metadata.get("encoding") != ENCODING:
            if self._strict and (metadata.get("encoding"), payload.data) not in _SERVER_WRITTEN:
                return Payload(metadata={"encoding": UNAUTHENTICATED_ENCODING})
            return payload  # for an operator's reading: as it is
        key_id = metadata.get("encryption-key-id", b"")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload encrypted under key {key_id.decode(errors='replace')!r}, which is not"
                " in this process's keyring (PAYLOAD_KEYS / PAYLOAD_KEYS_FILE)"
            )
        try:
            plain = cipher.decrypt(metadata.get("encryption-nonce", b""), payload.data, None)
        except (InvalidTag, ValueError):
            raise PayloadDecryptionError(
                f"payload under key {key_id.decode(errors='replace')!r} failed authentication:"
                " it was altered, or encrypted under another key with the same id"
            ) from None
        return Payload.FromString(plain)

    def encrypt_all(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    def decrypt_all(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    # The SDK's interface. Both run on the event loop: one AES-GCM pass per
    # payload costs microseconds, less than handing it to a thread would.
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encrypt_all(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decrypt_all(payloads)
