"""One trace per order: from the caller's span to every process's SQL, edge by edge."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients.errors import Reason, decode
from clients.proto.orders.v1 import orders_pb2
from server.devstack.traces import build_tree, render
from tests.support.stack import Stack
from tests.support.telemetry import Caller, TracedOrder, read_spans

pytestmark = pytest.mark.e2e

# Each activity of the order's way to SHIPPED, and the downstream call it
# makes; the first three also write the order they moved on (step-records),
# and the first stores the new order before its call (first-write-in-reserve).
ACTIVITY_CALLS = {
    "store_reserve_and_record": ("inventory", "/inventory.v1.InventoryService/ReserveStock"),
    "charge_payment_and_record": ("payments", "/payments.v1.PaymentService/Charge"),
    "commit_stock_and_record": ("inventory", "/inventory.v1.InventoryService/CommitReservation"),
    "book_shipment_and_record": ("shipping", "/shipping.v1.ShippingService/CreateShipment"),
    # The carrier takes 0.3 s here: the booking is then awaited.
    "arrange_shipping": ("shipping", "/shipping.v1.ShippingService/GetShipment"),
}


class Trace:
    """One trace's spans from every process's file, with lookups by edge."""

    def __init__(self, spans: list[dict[str, Any]]) -> None:
        self.spans = spans
        self.by_id = {s["span_id"]: s for s in spans}

    def named(self, name: str, service: str | None = None) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["name"] == name and service in (None, s["service"])]

    def one(self, name: str, service: str | None = None) -> dict[str, Any]:
        found = self.named(name, service)
        assert len(found) == 1, f"{len(found)} spans named {name} in {service or 'any process'}"
        return found[0]

    def children(
        self, parent: dict[str, Any], name: str | None = None, service: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            s
            for s in self.spans
            if s["parent_span_id"] == parent["span_id"]
            and name in (None, s["name"])
            and service in (None, s["service"])
        ]

    def child(self, parent: dict[str, Any], name: str, service: str) -> dict[str, Any]:
        found = self.children(parent, name, service)
        assert found, f"no {name} in {service} under {parent['name']} ({parent['service']})"
        return found[0]


@pytest.fixture
def trace(stack: Stack, traced_order: TracedOrder) -> Trace:
    return Trace([s for s in read_spans(stack) if s["trace_id"] == traced_order.trace_id])


def _sql_under(trace: Trace, span: dict[str, Any]) -> list[dict[str, Any]]:
    """The asyncpg spans of the queries made under `span`."""
    return [
        s
        for s in trace.children(span)
        if s["kind"] == "CLIENT" and s["attributes"].get("db.system") == "postgresql"
    ]


def _writes_the_order(queries: list[dict[str, Any]]) -> bool:
    """Whether one of `queries` stores a version of an order (OrderProjection.record)."""
    return any(
        "INSERT INTO orders.orders" in q["attributes"].get("db.statement", "") for q in queries
    )


async def test_the_front_door_continues_the_callers_trace(
    trace: Trace, traced_order: TracedOrder
) -> None:
    front_door = trace.one("/orders.v1.OrderService/CreateOrder", "orders")
    assert front_door["parent_span_id"] == traced_order.caller_span_id
    assert front_door["kind"] == "SERVER"
    assert front_door["attributes"]["order.id"] == traced_order.order_id
    assert front_door["attributes"]["rpc.grpc.status_code"] == 0

    # Pricing: a call to the catalog, answered from the inventory's tables.
    catalog_call = trace.child(front_door, "/inventory.v1.InventoryService/BatchGetStock", "orders")
    assert catalog_call["kind"] == "CLIENT"
    catalog = trace.child(catalog_call, "/inventory.v1.InventoryService/BatchGetStock", "inventory")
    assert catalog["kind"] == "SERVER"
    assert _sql_under(trace, catalog), "the catalog's query is not under its server span"
    # The front door's own query of the projection.
    assert _sql_under(trace, front_door)


async def test_the_trace_runs_through_temporal_into_every_activity(
    trace: Trace, traced_order: TracedOrder
) -> None:
    front_door = trace.one("/orders.v1.OrderService/CreateOrder", "orders")
    start = trace.child(front_door, "StartWorkflow:OrderWorkflow", "orders")
    assert start["attributes"]["temporalWorkflowID"] == traced_order.order_id
    run = trace.child(start, "RunWorkflow:OrderWorkflow", "worker")
    assert run["kind"] == "SERVER"

    for activity, (service, method) in ACTIVITY_CALLS.items():
        scheduled = trace.child(run, f"StartActivity:{activity}", "worker")
        executed = trace.child(scheduled, f"RunActivity:{activity}", "worker")
        assert executed["attributes"]["order.id"] == traced_order.order_id
        call = trace.child(executed, method, "worker")
        assert call["kind"] == "CLIENT"
        served = trace.child(call, method, service)
        assert served["kind"] == "SERVER"
        assert served["attributes"]["order.id"] == traced_order.order_id
        assert _sql_under(trace, served), f"no SQL under {method} in {service}"
        # Counted on the call's span too, as they are when too quick to be spans.
        assert served["attributes"]["sql.statements"] == len(_sql_under(trace, served)), method
        # The order's write, after the call; the booking writes it only when
        # the carrier confirms in its answer, which this stack's does not.
        if activity.endswith("_and_record") and activity != "book_shipment_and_record":
            assert _writes_the_order(_sql_under(trace, executed)), activity

    # The projection: written by the worker's own activity, straight to Postgres.
    recorded = trace.children(run, "StartActivity:record_order", "worker")
    assert recorded
    writes = trace.child(recorded[0], "RunActivity:record_order", "worker")
    assert _writes_the_order(_sql_under(trace, writes))


async def test_every_span_hangs_from_the_callers(trace: Trace, traced_order: TracedOrder) -> None:
    """One trace id, and no span whose parent is missing: every edge was carried."""
    assert {s["trace_id"] for s in trace.spans} == {traced_order.trace_id}
    services = {s["service"] for s in trace.spans}
    assert services == {"orders", "inventory", "payments", "shipping", "worker"}
    orphans = [
        s
        for s in trace.spans
        if s["parent_span_id"] not in trace.by_id
        and s["parent_span_id"] != traced_order.caller_span_id
    ]
    assert not orphans, [(s["name"], s["service"]) for s in orphans]
    # Each workflow step is scheduled once, even though the workflow replays
    # its history at every step.
    assert len(trace.named("RunWorkflow:OrderWorkflow")) == 1
    for activity in ACTIVITY_CALLS:
        assert len(trace.named(f"StartActivity:{activity}")) == 1


async def test_the_trace_command_prints_the_tree(trace: Trace, traced_order: TracedOrder) -> None:
    text = render(build_tree(trace.spans, traced_order.trace_id), traced_order.trace_id)
    lines = text.splitlines()
    assert lines[0].startswith(f"trace {traced_order.trace_id}: {len(trace.spans)} spans")

    def line(name: str) -> str:
        return next(x for x in lines if x.split("  [")[0].endswith(f" {name}"))

    # The caller's span is in its own process: the front door's is the root here.
    names = {
        "root": "/orders.v1.OrderService/CreateOrder",
        "run": "RunWorkflow:OrderWorkflow",
        "charge": "RunActivity:charge_payment_and_record",
    }
    found = {key: line(name) for key, name in names.items()}
    root, charge = found["root"], found["charge"]
    assert lines.index(root) == 2
    # Deeper in the tree, further right.
    depth = {key: found[key].index(name) for key, name in names.items()}
    assert depth["root"] < depth["run"] < depth["charge"]
    # What a call's statements took, counted on its span.
    assert "SQL statement" in charge, charge


async def test_an_error_carries_the_trace_id_to_the_caller(stack: Stack) -> None:
    caller = Caller()
    bad = orders_pb2.CreateOrderRequest(customer_id="c1")  # no request_id, lines, address...
    with caller.span("caller CreateOrder") as metadata:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stack.orders.CreateOrder(bad, metadata=metadata)
    error = decode(failed.value)
    assert error.reason is Reason.INVALID_ARGUMENT
    assert error.metadata["trace_id"] == format(caller.finished_span().context.trace_id, "032x")
