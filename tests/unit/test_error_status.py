"""Any Error, however much of a caller's input it echoes, fits in a call's trailers."""

from __future__ import annotations

import base64

from google.rpc import error_details_pb2, status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.errors import DOMAIN, Error, FieldViolation, Reason
from server.core.clip import clip
from server.core.error_status import OMITTED, status_of

# gRPC's default soft limit on a call's metadata; past it calls start to fail.
SOFT_LIMIT = 8 * 1024


def trailer_bytes(status: status_pb2.Status) -> int:
    """What a status costs in the trailers: its details as base64, its message percent-encoded."""
    details = base64.b64encode(status.SerializeToString())
    # gRPC percent-encodes every byte outside printable ASCII, and '%'.
    plain = sum(0x20 <= byte <= 0x7E and byte != 0x25 for byte in status.message.encode())
    message = plain + 3 * (len(status.message.encode()) - plain)
    return len("grpc-status-details-bin") + len(details) + len("grpc-message") + message


# Short text of any character, or one character repeated up to 40,000 times.
text = st.one_of(
    st.text(max_size=40),
    st.builds(lambda c, n: c * n, st.characters(exclude_categories=["Cs"]), st.integers(0, 40_000)),
)
violations = st.lists(
    st.builds(FieldViolation, text, text, st.sampled_from(list(Reason))), max_size=300
)
errors = st.builds(
    Error,
    st.sampled_from(list(Reason)),
    text,
    st.dictionaries(text, text, max_size=40),
    violations,
)


def info_of(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


@settings(max_examples=300, deadline=None)
@given(errors, st.booleans(), st.text(alphabet="0123456789abcdef", min_size=32, max_size=32))
def test_any_error_encodes_under_the_limit(error: Error, retry: bool, trace_id: str) -> None:
    error.metadata["trace_id"] = trace_id
    status = status_of(error, retry_delay=1.0 if retry else None)

    assert trailer_bytes(status) < SOFT_LIMIT
    info = info_of(status)
    # The reason and the trace id are never what gives way.
    assert (info.reason, info.domain, status.code) == (
        error.reason.value,
        DOMAIN,
        error.code.value[0],
    )
    assert info.metadata["trace_id"] == trace_id
    # Whatever was left out is said.
    bad_request = error_details_pb2.BadRequest()
    shown = [d for d in status.details if d.Unpack(bad_request)]
    kept = len(bad_request.field_violations) if shown else 0
    if kept < len(error.violations):
        assert f"{len(error.violations) - kept} field violations" in info.metadata[OMITTED]


def test_a_small_error_is_sent_as_it_is() -> None:
    error = Error(
        Reason.UNKNOWN_SKU,
        "invalid request: line_items[0].sku: no SKU MUG-9 in the catalog",
        {"trace_id": "0" * 32},
        [FieldViolation("line_items[0].sku", "no SKU MUG-9 in the catalog", Reason.UNKNOWN_SKU)],
    )
    assert status_of(error) == error.to_status()


def test_a_huge_value_is_cut_with_a_marker() -> None:
    error = Error(Reason.PERMISSION_DENIED, "x" * 20_000, {"customer_id": "c" * 20_000})
    info = info_of(status_of(error))
    assert info.metadata["customer_id"].startswith("ccc")
    assert info.metadata["customer_id"].endswith("chars]")
    assert len(info.metadata["customer_id"]) <= 128


def test_clip_cuts_by_bytes_and_keeps_characters_whole() -> None:
    assert clip("short") == "short"
    cut = clip("é" * 200, 64)
    assert len(cut.encode()) <= 64
    assert cut.startswith("é") and cut.endswith("chars]")
    assert clip("a" * 128) == "a" * 128
    assert clip("a" * 129) != "a" * 129
