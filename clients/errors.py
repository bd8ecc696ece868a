"""The error vocabulary shared by every service and every caller.

Each failure is a `google.rpc.Status` whose details hold an `ErrorInfo`:
callers branch on `ErrorInfo.reason`, never on message text. The reasons,
the gRPC code each one travels with and whether repeating the call may
succeed (`Retry`) are listed here once; the servers raise them, the workflow
branches on them and retries by them, and `decode` reads them back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "orders.example.com"


class Retry(enum.Enum):
    """What repeating a failed call may do: one answer per reason, for every caller."""

    # The service could not answer for now: the same call may succeed, and
    # any caller may repeat it (the typed clients, the front door, a step).
    TRANSIENT = "transient"
    # A business answer (a declined card, no stock): the same call gets it
    # again. Nobody repeats it; a saga step that meets it fails for good.
    FINAL = "final"
    # Neither: a fault, a refusal or a limit, which may or may not pass. A
    # caller does not repeat the call as it is (a limit says when it may, in
    # its RetryInfo); a saga step, which can wait, keeps trying until its
    # deadline.
    UNCERTAIN = "uncertain"


class Reason(enum.StrEnum):
    """Why a call failed; the `ErrorInfo.reason` on the wire."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNKNOWN_SKU = "UNKNOWN_SKU"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    PAYMENT_NOT_FOUND = "PAYMENT_NOT_FOUND"
    SHIPMENT_NOT_FOUND = "SHIPMENT_NOT_FOUND"
    SKU_NOT_FOUND = "SKU_NOT_FOUND"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    ADDRESS_UNDELIVERABLE = "ADDRESS_UNDELIVERABLE"
    ALREADY_SHIPPED = "ALREADY_SHIPPED"
    ORDER_FINISHED = "ORDER_FINISHED"
    NOT_SHIPPED = "NOT_SHIPPED"
    SHIPMENT_CANCELLED = "SHIPMENT_CANCELLED"
    RESERVATION_RELEASED = "RESERVATION_RELEASED"
    RESERVATION_NOT_FOUND = "RESERVATION_NOT_FOUND"
    SHIPMENT_DIFFERS = "SHIPMENT_DIFFERS"
    RESERVATION_DIFFERS = "RESERVATION_DIFFERS"
    CHARGE_VOIDED = "CHARGE_VOIDED"
    PAYMENT_METHOD_MISMATCH = "PAYMENT_METHOD_MISMATCH"
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"
    GATEWAY_UNAVAILABLE = "GATEWAY_UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    WORKFLOW_ENDED = "WORKFLOW_ENDED"
    INTERNAL = "INTERNAL"

    @property
    def code(self) -> grpc.StatusCode:
        return _CODES[self]

    @property
    def retry(self) -> Retry:
        """What repeating the same call may do; every layer's retry decision starts here."""
        return _RETRIES[self]

    @property
    def retryable(self) -> bool:
        """Whether repeating the same call may succeed: any caller may repeat it as it is."""
        return self.retry is Retry.TRANSIENT

    @property
    def final(self) -> bool:
        """Whether the same call gets the same answer however often it is made.

        A business answer: a saga step that meets it is not tried again
        (worker/model.py's BUSINESS_ERRORS, the activities' `non_retryable`).
        """
        return self.retry is Retry.FINAL

    @property
    def summary(self) -> str:
        """The reason's standard message, fit to show a customer: no internal detail."""
        return _SUMMARIES[self]


_CODES: dict[Reason, grpc.StatusCode] = {
    Reason.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.UNKNOWN_SKU: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.CURRENCY_MISMATCH: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.REQUEST_ID_REUSED: grpc.StatusCode.ALREADY_EXISTS,
    Reason.IDEMPOTENCY_KEY_REUSED: grpc.StatusCode.ALREADY_EXISTS,
    Reason.ORDER_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.PAYMENT_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.SHIPMENT_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.SKU_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.OUT_OF_STOCK: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.PAYMENT_DECLINED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.ADDRESS_UNDELIVERABLE: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.ALREADY_SHIPPED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.ORDER_FINISHED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.NOT_SHIPPED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.SHIPMENT_CANCELLED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.RESERVATION_RELEASED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.RESERVATION_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.SHIPMENT_DIFFERS: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.RESERVATION_DIFFERS: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.CHARGE_VOIDED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.PAYMENT_METHOD_MISMATCH: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.DEPENDENCY_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.GATEWAY_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Reason.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.WORKFLOW_ENDED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.INTERNAL: grpc.StatusCode.INTERNAL,
}

_RETRIES: dict[Reason, Retry] = {
    Reason.INVALID_ARGUMENT: Retry.FINAL,
    Reason.UNKNOWN_SKU: Retry.UNCERTAIN,
    Reason.CURRENCY_MISMATCH: Retry.UNCERTAIN,
    Reason.REQUEST_ID_REUSED: Retry.UNCERTAIN,
    Reason.IDEMPOTENCY_KEY_REUSED: Retry.FINAL,
    Reason.ORDER_NOT_FOUND: Retry.UNCERTAIN,
    Reason.PAYMENT_NOT_FOUND: Retry.UNCERTAIN,
    Reason.SHIPMENT_NOT_FOUND: Retry.UNCERTAIN,
    Reason.SKU_NOT_FOUND: Retry.FINAL,
    Reason.OUT_OF_STOCK: Retry.FINAL,
    Reason.PAYMENT_DECLINED: Retry.FINAL,
    Reason.ADDRESS_UNDELIVERABLE: Retry.FINAL,
    Reason.ALREADY_SHIPPED: Retry.UNCERTAIN,
    Reason.ORDER_FINISHED: Retry.UNCERTAIN,
    Reason.NOT_SHIPPED: Retry.UNCERTAIN,
    Reason.SHIPMENT_CANCELLED: Retry.FINAL,
    Reason.RESERVATION_RELEASED: Retry.FINAL,
    Reason.RESERVATION_NOT_FOUND: Retry.FINAL,
    # The booking activity answers it by moving the booking, not by failing.
    Reason.SHIPMENT_DIFFERS: Retry.UNCERTAIN,
    # An order's lines never change: another reservation under it is a fault to look at.
    Reason.RESERVATION_DIFFERS: Retry.FINAL,
    Reason.CHARGE_VOIDED: Retry.FINAL,
    Reason.PAYMENT_METHOD_MISMATCH: Retry.FINAL,
    Reason.RATE_LIMITED: Retry.UNCERTAIN,
    Reason.OVERLOADED: Retry.UNCERTAIN,
    Reason.DEPENDENCY_UNAVAILABLE: Retry.TRANSIENT,
    Reason.GATEWAY_UNAVAILABLE: Retry.TRANSIENT,
    Reason.UNAUTHENTICATED: Retry.UNCERTAIN,
    Reason.PERMISSION_DENIED: Retry.UNCERTAIN,
    Reason.WORKFLOW_ENDED: Retry.UNCERTAIN,
    Reason.INTERNAL: Retry.UNCERTAIN,
}

_SUMMARIES: dict[Reason, str] = {
    Reason.INVALID_ARGUMENT: "The request is not valid.",
    Reason.UNKNOWN_SKU: "An item of the order is not in the catalog.",
    Reason.CURRENCY_MISMATCH: "The items of the order are priced in different currencies.",
    Reason.REQUEST_ID_REUSED: "This request_id was already used for a different request.",
    Reason.IDEMPOTENCY_KEY_REUSED: "This payment key was already used for a different charge.",
    Reason.ORDER_NOT_FOUND: "The order was not found.",
    Reason.PAYMENT_NOT_FOUND: "The payment was not found.",
    Reason.SHIPMENT_NOT_FOUND: "The order has no shipment.",
    Reason.SKU_NOT_FOUND: "An item of the order is not in the catalog.",
    Reason.OUT_OF_STOCK: "An item of the order is out of stock.",
    Reason.PAYMENT_DECLINED: "The card was declined.",
    Reason.ADDRESS_UNDELIVERABLE: "The carrier cannot deliver to the shipping address.",
    Reason.ALREADY_SHIPPED: "The order has already shipped.",
    Reason.ORDER_FINISHED: "The order has already been cancelled or has failed.",
    Reason.NOT_SHIPPED: "The order has not shipped yet.",
    Reason.SHIPMENT_CANCELLED: "The order's shipment was cancelled.",
    Reason.RESERVATION_RELEASED: "The items set aside for the order were released.",
    Reason.RESERVATION_NOT_FOUND: "No items are set aside for the order.",
    Reason.SHIPMENT_DIFFERS: "The order's parcel is already booked to another address or count.",
    Reason.RESERVATION_DIFFERS: "Other items are already set aside for the order.",
    Reason.CHARGE_VOIDED: "The order's payment was cancelled.",
    Reason.PAYMENT_METHOD_MISMATCH: "The payment method was given for another order.",
    Reason.RATE_LIMITED: "Too many requests from this caller: retry after the delay given.",
    Reason.OVERLOADED: "The platform is at capacity: retry after the delay given.",
    Reason.DEPENDENCY_UNAVAILABLE: "A service the order needs is unavailable for now.",
    Reason.GATEWAY_UNAVAILABLE: "The card payment service is unavailable for now.",
    Reason.UNAUTHENTICATED: "The caller's credentials are missing or not valid.",
    Reason.PERMISSION_DENIED: "The caller may not do this.",
    Reason.WORKFLOW_ENDED: "The order's processing was stopped; an operator is putting it right.",
    Reason.INTERNAL: "Something went wrong on our side.",
}


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, as `google.rpc.BadRequest` reports it."""

    field: str
    description: str
    reason: Reason = Reason.INVALID_ARGUMENT


@dataclass(eq=False)
class Error(Exception):
    """A failure with a reason from the shared vocabulary.

    Servers raise it; the error interceptor turns it into a `google.rpc.Status`.
    Clients get it back from `decode`. `retry_delay` is the wait before a
    retry that travels as `google.rpc.RetryInfo` (None: the server's default
    for a retryable error), so a server can pass on the one it was given.
    """

    reason: Reason
    message: str
    metadata: dict[str, str] = field(default_factory=dict)
    violations: list[FieldViolation] = field(default_factory=list)
    retry_delay: float | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def code(self) -> grpc.StatusCode:
        return self.reason.code

    def to_status(self) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(
            reason=self.reason.value, domain=DOMAIN, metadata=self.metadata
        )
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        status.details.add().Pack(info)
        if self.violations:
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description, reason=v.reason.value
                    )
                    for v in self.violations
                ]
            )
            status.details.add().Pack(bad_request)
        return status


def invalid(violations: list[FieldViolation]) -> Error:
    """An INVALID_ARGUMENT error listing every bad field."""
    reasons = {v.reason for v in violations}
    reason = reasons.pop() if len(reasons) == 1 else Reason.INVALID_ARGUMENT
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return Error(reason, f"invalid request: {summary}", violations=violations)


def with_retry_delay(status: status_pb2.Status, seconds: float) -> status_pb2.Status:
    """Adds a `google.rpc.RetryInfo`: how long a caller should wait before retrying."""
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromNanoseconds(round(seconds * 1e9))
    status.details.add().Pack(info)
    return status


def retry_delay(error: grpc.RpcError) -> float | None:
    """The retry delay a failed call suggests (its RetryInfo), in seconds, if any."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


def decode(error: grpc.RpcError) -> Error:
    """Reads the reason, metadata, field violations and retry delay out of a failed call.

    Errors without rich details (a dead server, a proxy) get a reason from the
    status code alone: UNAVAILABLE becomes DEPENDENCY_UNAVAILABLE, anything
    else INTERNAL.
    """
    # Sync calls raise grpc.Call objects, grpc.aio raises AioRpcError: both
    # offer code(), details() and trailing_metadata().
    is_call = callable(getattr(error, "trailing_metadata", None))
    code = error.code() if is_call else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
    message = (error.details() if is_call else str(error)) or ""  # type: ignore[attr-defined]
    status = rpc_status.from_call(error) if is_call else None  # type: ignore[arg-type]
    reason, metadata, violations, delay = None, {}, [], None
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(info) and info.domain == DOMAIN and info.reason in Reason.__members__:
            reason, metadata = Reason(info.reason), dict(info.metadata)
        elif detail.Unpack(retry):
            delay = retry.retry_delay.ToNanoseconds() / 1e9
        elif detail.Unpack(bad):
            violations = [
                FieldViolation(
                    v.field,
                    v.description,
                    Reason(v.reason) if v.reason in Reason.__members__ else Reason.INVALID_ARGUMENT,
                )
                for v in bad.field_violations
            ]
    if reason is None:
        reason = (
            Reason.DEPENDENCY_UNAVAILABLE
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            else Reason.INTERNAL
        )
    return Error(reason, message, metadata, violations, retry_delay=delay)


@dataclass(eq=False)
class CallError(Error):
    """A failed call, as the typed clients raise it.

    Beside the reason, metadata and field violations of `Error`, it keeps the
    status code the call really ended with (a deadline is DEADLINE_EXCEEDED,
    not the UNAVAILABLE its reason travels with), the method, and the delay
    the server asked for before a retry.
    """

    status_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    method: str = ""
    retry_after: float | None = None

    @property
    def code(self) -> grpc.StatusCode:
        return self.status_code

    @property
    def trace_id(self) -> str | None:
        """The server's trace of the call, to look it up in its logs and traces."""
        return self.metadata.get("trace_id")

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.message}"


def call_error(error: grpc.RpcError, method: str = "") -> CallError:
    """`decode`, keeping what a caller needs to report or retry the call."""
    decoded = decode(error)
    is_call = callable(getattr(error, "trailing_metadata", None))
    code = error.code() if is_call else None  # type: ignore[attr-defined]
    return CallError(
        decoded.reason,
        decoded.message,
        decoded.metadata,
        decoded.violations,
        decoded.retry_delay,
        status_code=code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN,
        method=method,
        retry_after=retry_delay(error) if is_call else None,
    )
