"""Exit codes scripts can branch on, and what a person should do about each failure."""

from __future__ import annotations

import enum
import json
import sys

import grpc
from rich.console import Console

from clients.errors import CallError, Reason


class ExitCode(enum.IntEnum):
    """How a command ended (README.md lists them)."""

    OK = 0
    # Unexpected: a fault in the platform (INTERNAL) or in this tool.
    ERROR = 1
    # Bad flags or input, here or as the server judged them (INVALID_ARGUMENT).
    USAGE = 2
    # No such order, SKU or payment (NOT_FOUND).
    NOT_FOUND = 3
    # The platform's rules refuse it now (FAILED_PRECONDITION, ALREADY_EXISTS).
    REFUSED = 4
    # The platform could not be reached, did not answer in time or turned the
    # call away as too busy, even after retries (UNAVAILABLE, DEADLINE_EXCEEDED,
    # RESOURCE_EXHAUSTED): the same command may be repeated.
    UNAVAILABLE = 5
    # The credentials are missing, wrong, or not allowed to do this.
    DENIED = 6
    # `watch`: the order ended CANCELLED or FAILED.
    ORDER_ENDED_UNFULFILLED = 7


_EXIT_OF_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: ExitCode.USAGE,
    grpc.StatusCode.OUT_OF_RANGE: ExitCode.USAGE,
    grpc.StatusCode.NOT_FOUND: ExitCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION: ExitCode.REFUSED,
    grpc.StatusCode.ALREADY_EXISTS: ExitCode.REFUSED,
    grpc.StatusCode.ABORTED: ExitCode.REFUSED,
    grpc.StatusCode.UNAVAILABLE: ExitCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ExitCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ExitCode.UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: ExitCode.DENIED,
    grpc.StatusCode.PERMISSION_DENIED: ExitCode.DENIED,
}

_HINTS: dict[Reason, str] = {
    Reason.INVALID_ARGUMENT: "Correct the fields named above and run the command again.",
    Reason.UNKNOWN_SKU: "Stock the SKU first: `orders stock set SKU --quantity N --price 12.50`.",
    Reason.CURRENCY_MISMATCH: "Order only SKUs priced in one currency (`orders stock show`).",
    Reason.REQUEST_ID_REUSED: (
        "That request id placed a different order: repeat the first request exactly, "
        "or leave out --request-id to place a new one."
    ),
    Reason.ORDER_NOT_FOUND: (
        "Check the order id (`orders list` shows recent orders); a customer service's "
        "token sees only its own customer's orders."
    ),
    Reason.PAYMENT_NOT_FOUND: "Check the payment id (`orders payments list ORDER_ID`).",
    Reason.SHIPMENT_NOT_FOUND: "The order has no shipment yet.",
    Reason.SKU_NOT_FOUND: "Stock it first: `orders stock set SKU --quantity N --price 12.50`.",
    Reason.OUT_OF_STOCK: "Restock the SKU named above (`orders stock set`) or order fewer.",
    Reason.PAYMENT_DECLINED: "The card was declined: place the order again with another card.",
    Reason.ADDRESS_UNDELIVERABLE: "The carrier cannot deliver there: use another address.",
    Reason.ALREADY_SHIPPED: "The order has shipped: it can no longer be cancelled or redirected.",
    Reason.ORDER_FINISHED: "The order is cancelled or failed: nothing about it can change now.",
    Reason.NOT_SHIPPED: "Delivery can be confirmed once the order has shipped (`orders watch`).",
    Reason.DEPENDENCY_UNAVAILABLE: (
        "The platform is down, unreachable or busy: check that it runs (`make run`) and "
        "the --target, then repeat the same command; repeating it is safe."
    ),
    Reason.GATEWAY_UNAVAILABLE: "The card gateway is failing: repeat the same command later.",
    Reason.RATE_LIMITED: (
        "This caller sends more than its share: it was told when to come back and tried "
        "again; repeat the same command later, or more slowly."
    ),
    Reason.OVERLOADED: (
        "The platform is at capacity and turned this away without doing it: repeat the "
        "same command in a few seconds; repeating it is safe."
    ),
    Reason.UNAUTHENTICATED: (
        "Give a valid token: --token, ORDERS_TOKEN, or --token-file "
        "(default .data/auth/operator.token, which `make run` makes)."
    ),
    Reason.PERMISSION_DENIED: (
        "This token's role may not do that: use an operator's token (`make token`)."
    ),
    Reason.WORKFLOW_ENDED: (
        "The order's workflow was ended from outside: nothing can retry or undo its steps. "
        "`orders ops show ORDER_ID` lists what it holds; put that right at each service, "
        "then `orders ops resolve ORDER_ID --note ...`."
    ),
    Reason.INTERNAL: "A fault in the platform: its logs have the details under the trace id.",
}


def exit_code_of(error: CallError) -> ExitCode:
    return _EXIT_OF_CODE.get(error.code, ExitCode.ERROR)


def hint_for(error: CallError) -> str:
    if error.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return (
            "No answer in time: repeat the same command (it is safe), or allow longer "
            "with --timeout."
        )
    return _HINTS.get(error.reason, "")


def error_document(error: CallError, hint: str) -> dict[str, object]:
    """The error as `--json` reports it, on stderr."""
    return {
        "error": {
            "code": error.code.name,
            "reason": error.reason.value,
            "message": error.message,
            "metadata": error.metadata,
            "field_violations": [
                {"field": v.field, "description": v.description, "reason": v.reason.value}
                for v in error.violations
            ],
            "trace_id": error.trace_id,
            "hint": hint,
        }
    }


def report(error: CallError, *, as_json: bool, hint: str = "") -> ExitCode:
    """Tells the person (or the script) what failed and what to do; returns the exit code."""
    hint = hint or hint_for(error)
    if as_json:
        print(json.dumps(error_document(error, hint)), file=sys.stderr)
        return exit_code_of(error)
    console = Console(stderr=True, highlight=False)
    console.print(f"[bold red]error:[/] {error.reason.value} ({error.code.name}): {error.message}")
    for violation in error.violations:
        console.print(f"  [yellow]{violation.field}[/]: {violation.description}")
    details = {k: v for k, v in error.metadata.items() if k != "trace_id"}
    if details:
        console.print("  " + ", ".join(f"{k}={v}" for k, v in sorted(details.items())))
    if error.trace_id:
        console.print(f"  trace id: {error.trace_id}")
    if hint:
        console.print(f"[bold]what to do:[/] {hint}")
    return exit_code_of(error)


def usage_error(message: str, *, as_json: bool) -> ExitCode:
    """A mistake in the command itself, found before any call."""
    if as_json:
        print(json.dumps({"error": {"code": "USAGE", "message": message}}), file=sys.stderr)
    else:
        Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {message}")
    return ExitCode.USAGE
