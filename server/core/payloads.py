"""How values travel in Temporal payloads, for every client and worker of the project.

The SDK's default writes protobuf messages as JSON (`json/protobuf`), which
costs a pure-Python conversion each way for every order snapshot the workflow
hands to a projection write, an update or a query. Here binary protobuf comes
first (`binary/protobuf`, parsed in C); everything else is as the default has
it. Decoding goes by each payload's own encoding, so histories written with
JSON payloads still read, and any Temporal client with the default converter
reads these.

What reaches Temporal is then encrypted (server/core/codec.py):
`encrypted_converter` adds the codec to this converter.
"""

from __future__ import annotations

import dataclasses

from temporalio.converter import (
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    BinaryProtoPayloadConverter,
    CompositePayloadConverter,
    DataConverter,
    JSONPlainPayloadConverter,
    JSONProtoPayloadConverter,
    PayloadCodec,
)


class BinaryProtobufFirst(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(
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
