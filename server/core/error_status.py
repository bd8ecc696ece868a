"""An Error as the `google.rpc.Status` its caller receives, never too large to send.

A status travels in the call's trailers: the whole Status (message included)
base64-encoded as `grpc-status-details-bin`, and its message once more,
percent-encoded, as `grpc-message`. gRPC refuses trailers larger than 16 KB
(and some of those larger than 8 KB), and a caller then gets
RESOURCE_EXHAUSTED instead of the error the server meant. Much of an error is
the caller's own input echoed back (a value in ErrorInfo metadata, a SKU in a
field violation, a list of every bad field), so every service's errors are
bounded here, where they become statuses:

* each metadata key and value, the message, and each field violation's field
  and description are cut to a fixed size (server/core/clip.py);
* at most MAX_VIOLATIONS field violations and MAX_METADATA metadata entries
  are kept;
* if the status is still larger than MAX_STATUS_BYTES, the least important
  details go first: field violations from the last, then metadata other than
  the trace id. The ErrorInfo reason always stays.

Whatever was left out is named in the ErrorInfo metadata under `omitted`.
"""

from __future__ import annotations

from google.rpc import status_pb2

from clients.errors import Error, FieldViolation, Reason, with_retry_delay
from server.core.clip import clip

# At most 4 KB as base64, plus at most 1.5 KB for the message percent-encoded
# (3 bytes for each byte outside printable ASCII): well under the 8 KB soft
# limit, with room for the other trailers.
MAX_STATUS_BYTES = 3000
MAX_MESSAGE_BYTES = 512
MAX_METADATA = 16
MAX_KEY_BYTES = 64
MAX_VALUE_BYTES = 128
MAX_VIOLATIONS = 20
MAX_FIELD_BYTES = 128
MAX_DESCRIPTION_BYTES = 256
# The metadata key that says what was left out.
OMITTED = "omitted"
# Kept whatever else goes: it finds the server's side of the call.
_KEPT = frozenset({"trace_id"})


def status_of(error: Error, *, retry_delay: float | None = None) -> status_pb2.Status:
    """The status for `error` (with a RetryInfo when `retry_delay` is given), bounded."""
    # Kept keys first, so that the cap on entries never drops them.
    entries = sorted(error.metadata.items(), key=lambda item: item[0] not in _KEPT)
    metadata = {
        clip(key, MAX_KEY_BYTES): clip(value, MAX_VALUE_BYTES)
        for key, value in entries[:MAX_METADATA]
    }
    dropped = [clip(key, MAX_KEY_BYTES) for key, _ in entries[MAX_METADATA:]]
    violations = [
        FieldViolation(
            clip(v.field, MAX_FIELD_BYTES), clip(v.description, MAX_DESCRIPTION_BYTES), v.reason
        )
        for v in error.violations[:MAX_VIOLATIONS]
    ]
    message = clip(error.message, MAX_MESSAGE_BYTES)
    droppable = [key for key in metadata if key not in _KEPT]
    while True:
        left_out = len(error.violations) - len(violations)
        status = _status(error.reason, message, metadata, violations, left_out, dropped)
        if retry_delay is not None:
            with_retry_delay(status, retry_delay)
        # Without violations and droppable metadata, what is left is bounded
        # well below the limit by the caps above.
        if status.ByteSize() <= MAX_STATUS_BYTES or not (violations or droppable):
            return status
        if violations:
            violations.pop()
        else:
            key = droppable.pop()
            del metadata[key]
            dropped.append(key)


def _status(
    reason: Reason,
    message: str,
    metadata: dict[str, str],
    violations: list[FieldViolation],
    violations_left_out: int,
    metadata_left_out: list[str],
) -> status_pb2.Status:
    notes = []
    if violations_left_out:
        notes.append(f"{violations_left_out} field violations")
    if metadata_left_out:
        notes.append("metadata " + ", ".join(metadata_left_out))
    if notes:
        metadata = {**metadata, OMITTED: clip("; ".join(notes), MAX_VALUE_BYTES)}
    return Error(reason, message, metadata, violations).to_status()
