"""A Temporal client that reads the stack's payloads as its processes write them."""

from __future__ import annotations

from temporalio.client import Client

from server.core.codec import EncryptionCodec
from server.core.payloads import encrypted_converter
from server.core.settings import Settings


def project_codec(settings: Settings | None = None) -> EncryptionCodec:
    """The codec of the stack's processes (same settings, so the same keyring)."""
    return EncryptionCodec((settings or Settings()).payload_keyring())


def decoding_client(client: Client, settings: Settings | None = None) -> Client:
    """`client`'s connection, with the project's converter: it reads encrypted payloads."""
    config = client.config()
    config["data_converter"] = encrypted_converter(project_codec(settings))
    return Client(**config)
