"""How values travel in Temporal payloads, for every client and worker of the project.

The SDK's default writes protobuf messages as JSON (`json/protobuf`), which
costs a pure-Python conversion each way for every order snapshot the workflow
hands to a projection write, an update or a query. Here binary protobuf comes
first (`binary/protobuf`, parsed in C); everything else is as the default has
it. Decoding goes by each payload's own encoding, so histories written with
JSON payloads still read, and any Temporal client with the default converter
reads these.

What reaches Temporal is then encrypted (server/core/codec.py):
`encrypted_converter` adds the codec to this converter. A payload the strict
codec found unencrypted is refused here, with an ApplicationError that the
SDK turns into a failed start, a rejected update or a dropped signal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    BinaryProtoPayloadConverter,
    CompositePayloadConverter,
    DataConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
    JSONProtoPayloadConverter,
    PayloadCodec,
)
from temporalio.exceptions import ApplicationError

from server.core.codec import UNAUTHENTICATED_ENCODING

# The ApplicationError type of a refused payload.
UNAUTHENTICATED_PAYLOAD = "UNAUTHENTICATED_PAYLOAD"


class RefuseUnauthenticated(EncodingPayloadConverter):
    """Refuses what the strict codec marked as not made by the platform; never encodes."""

    @property
    def encoding(self) -> str:
        return UNAUTHENTICATED_ENCODING.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise ApplicationError(
            "a payload that was not encrypted under the platform's keyring: refused",
            type=UNAUTHENTICATED_PAYLOAD,
            non_retryable=True,
        )


class BinaryProtobufFirst(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(
            RefuseUnauthenticated(),
            BinaryNullPayloadConverter(),
            BinaryPlainPayloadConverter(),
            BinaryProtoPayloadConverter(),
            JSONProtoPayloadConverter(),
            # Last: it takes any value and fails on what JSON cannot hold.
            JSONPlainPayloadConverter(),
        )


DATA_CONVERTER = dataclasses.replace(
    DataConverter.default, payload_converter_class=BinaryProtobufFirst
)


def encrypted_converter(codec: PayloadCodec) -> DataConverter:
    """The project's converter, its payloads passed through `codec` on their way to Temporal."""
    return dataclasses.replace(DATA_CONVERTER, payload_codec=codec)
