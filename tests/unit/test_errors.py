"""The shared error vocabulary: one list, encoded and decoded the same everywhere."""

from __future__ import annotations

import grpc
import pytest
from grpc_status import rpc_status

from clients.errors import DOMAIN, Error, FieldViolation, Reason, decode, invalid
from clients.proto.common.v1 import errors_pb2


def test_every_reason_is_in_the_contract() -> None:
    in_proto = {
        name.removeprefix("ERROR_REASON_")
        for name in errors_pb2.ErrorReason.keys()
        if name != "ERROR_REASON_UNSPECIFIED"
    }
    assert in_proto == set(Reason.__members__)


def test_every_reason_has_a_message_fit_for_a_customer() -> None:
    for reason in Reason:
        assert reason.summary.endswith("."), reason
        assert reason.value not in reason.summary  # words, not the code


class _FailedCall(grpc.RpcError):
    """What a grpc.aio call raises, reduced to what decode reads."""

    def __init__(self, code: grpc.StatusCode, details: str, metadata: tuple = ()) -> None:
        self._code, self._details, self._metadata = code, details, metadata

    @classmethod
    def of(cls, error: Error) -> _FailedCall:
        status = rpc_status.to_status(error.to_status())
        return cls(status.code, status.details, status.trailing_metadata)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._metadata


@pytest.mark.parametrize("reason", list(Reason))
def test_round_trip(reason: Reason) -> None:
    error = Error(reason, "something happened", {"order_id": "ord_1"})
    decoded = decode(_FailedCall.of(error))
    assert (decoded.reason, decoded.code, decoded.metadata) == (
        reason,
        reason.code,
        {"order_id": "ord_1"},
    )
    assert decoded.message == "something happened"


def test_field_violations_survive_the_trip() -> None:
    error = invalid(
        [
            FieldViolation("line_items[0].sku", "no such SKU", Reason.UNKNOWN_SKU),
            FieldViolation("request_id", "is required"),
        ]
    )
    decoded = decode(_FailedCall.of(error))
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT
    assert decoded.violations == error.violations


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (grpc.StatusCode.UNAVAILABLE, Reason.DEPENDENCY_UNAVAILABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, Reason.DEPENDENCY_UNAVAILABLE),
        (grpc.StatusCode.UNKNOWN, Reason.INTERNAL),
    ],
)
def test_a_status_without_details_gets_a_reason_from_its_code(
    code: grpc.StatusCode, reason: Reason
) -> None:
    assert decode(_FailedCall(code, "no details")).reason == reason


def test_errors_name_our_domain() -> None:
    status = Error(Reason.OUT_OF_STOCK, "none left").to_status()
    assert DOMAIN in str(status.details[0].value)


def test_the_contract_documents_each_reason_with_its_code() -> None:
    import re
    from pathlib import Path

    proto = (Path(__file__).parents[2] / "protos/common/v1/errors.proto").read_text()
    # A reason's comment starts with its code and may go on for more lines.
    commented = re.findall(r"// ([A-Z_]+): .*\n(?:  //.*\n)*  ERROR_REASON_(\w+) =", proto)
    documented = {name: code for code, name in commented}
    assert documented == {reason.value: reason.code.name for reason in Reason}


def test_only_unavailable_reasons_are_worth_retrying_as_is() -> None:
    assert {r for r in Reason if r.retryable} == {
        Reason.DEPENDENCY_UNAVAILABLE,
        Reason.GATEWAY_UNAVAILABLE,
    }
