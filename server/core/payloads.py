"""How values travel in Temporal payloads, for every client and worker of the project.

The SDK's default writes protobuf messages as JSON (`json/protobuf`), which
costs a pure-Python conversion each way for every order snapshot the workflow
hands to a projection write, an update or a query. Here binary protobuf comes
first (`binary/protobuf`, parsed in C); everything else is as the default has
it. Decoding goes by each payload's own encoding, so histories written with
JSON payloads still read, and any Temporal client with the default converter
reads these.
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
