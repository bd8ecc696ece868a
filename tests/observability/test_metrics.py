"""Every process serves /metrics, and the metrics move when orders run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clients.proto.orders.v1 import orders_pb2
from server.core.settings import Settings
from tests.support.orders import order_request, place, stock_sku, wait_for
from tests.support.stack import METRICS_ENDPOINTS, Stack
from tests.support.telemetry import PROCESSES, Samples, scrape, value

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


class Scrapes:
    """Every endpoint scraped before and after something happened."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self.before = self._all()
        self.after: dict[str, Samples] = {}

    def _all(self) -> dict[str, Samples]:
        return {name: scrape(self._stack.metrics_url(name)) for name in METRICS_ENDPOINTS}

    def again(self) -> None:
        self.after = self._all()

    def delta(self, endpoint: str, name: str, **labels: str) -> float:
        return value(self.after[endpoint], name, **labels) - value(
            self.before[endpoint], name, **labels
        )


async def test_a_shipped_order_moves_business_rpc_sdk_and_pool_metrics(stack: Stack) -> None:
    sku = await stock_sku(stack, 5, price_minor=700)
    scrapes = Scrapes(stack)
    order = await place(stack, order_request(sku, 3))
    await wait_for(stack, order.order_id, (orders_pb2.ORDER_STATE_SHIPPED,), within=30)
    scrapes.again()

    # Business metrics of the front door and the payment service.
    assert scrapes.delta("orders", "orders_created_total", currency="USD") == 1
    assert scrapes.delta("payments", "payments_charges_total", outcome="approved") == 1
    assert scrapes.delta("payments", "payments_charged_amount_minor_total", currency="USD") == 2100

    # Per-RPC server metrics, by method and status code.
    for endpoint, service, method in [
        ("orders", "orders.v1.OrderService", "CreateOrder"),
        ("inventory", "inventory.v1.InventoryService", "ReserveStock"),
        ("payments", "payments.v1.PaymentService", "Charge"),
        ("shipping", "shipping.v1.ShippingService", "CreateShipment"),
    ]:
        labels = {"grpc_service": service, "grpc_method": method}
        assert scrapes.delta(endpoint, "grpc_server_started_total", **labels) == 1
        assert scrapes.delta(endpoint, "grpc_server_handled_total", grpc_code="OK", **labels) == 1
        assert scrapes.delta(endpoint, "grpc_server_handling_seconds_count", **labels) == 1

    # The Temporal SDK's metrics, from the worker.
    # The charge runs inside a workflow task; the wait for the carrier (0.3 s
    # here) is a regular activity.
    assert (
        scrapes.delta(
            "temporal",
            "temporal_local_activity_execution_latency_count",
            activity_type="charge_payment_and_record",
        )
        == 1
    )
    assert (
        scrapes.delta(
            "temporal",
            "temporal_activity_execution_latency_count",
            activity_type="arrange_shipping",
        )
        == 1
    )
    assert (
        scrapes.delta(
            "temporal",
            "temporal_workflow_task_execution_latency_count",
            workflow_type="OrderWorkflow",
        )
        >= 2  # the first, and the one after the regular activity's result
    )

    # ... and from the front door's Temporal client: the order's workflow start.
    # (The parser reads the SDK's suffix-less counters with a `_total` suffix.)
    calls = ("temporal_request_total", "temporal_long_request_total")
    front_door = [
        sum(v for (name, _), v in samples["orders_temporal"].items() if name in calls)
        for samples in (scrapes.before, scrapes.after)
    ]
    assert front_door[1] > front_door[0]

    # Every process reports its pool, and the standard process metrics.
    for process in PROCESSES:
        assert value(scrapes.after[process], "db_pool_max_connections", pool=process) >= 1
        assert value(scrapes.after[process], "db_pool_connections", pool=process) >= 1
        assert value(scrapes.after[process], "process_resident_memory_bytes") > 0


async def test_a_failed_order_counts_its_compensations_and_refund(stack: Stack) -> None:
    sku = await stock_sku(stack, 5, price_minor=900)
    scrapes = Scrapes(stack)
    # The carrier cannot deliver to ZZ: the order fails after it was charged.
    order = await place(stack, order_request(sku, 1, country="ZZ"))
    seen = await wait_for(stack, order.order_id, within=30)
    assert seen[-1].state == orders_pb2.ORDER_STATE_FAILED
    scrapes.again()

    assert scrapes.delta("payments", "payments_refunded_amount_minor_total", currency="USD") == 900
    assert (
        scrapes.delta(
            "shipping",
            "grpc_server_handled_total",
            grpc_method="CreateShipment",
            grpc_code="FAILED_PRECONDITION",
        )
        == 1
    )
    # The workflow's own, through the SDK's meter (docs/metrics.md).
    for compensation in ("cancel_shipment", "refund_payment", "release_stock"):
        assert (
            scrapes.delta("temporal", "order_compensations_total", compensation=compensation) == 1
        )
    failed = {"state": "failed", "reason": "ADDRESS_UNDELIVERABLE"}
    assert scrapes.delta("temporal", "orders_completed_total", **failed) == 1
    assert scrapes.delta("temporal", "order_duration_seconds_count", **failed) == 1


def _documented() -> set[str]:
    """Metric names in docs/metrics.md's tables (first column, in backticks)."""
    text = (DOCS / "metrics.md").read_text()
    return set(re.findall(r"^\| `([a-z_:]+)`", text, flags=re.MULTILINE))


def _base(sample: str) -> str:
    return re.sub(r"_(bucket|count|sum)$", "", sample)


async def test_every_metric_of_ours_is_documented(stack: Stack) -> None:
    documented = _documented()
    served = {
        _base(name)
        for endpoint in METRICS_ENDPOINTS
        for name, _ in scrape(stack.metrics_url(endpoint))
    }
    # Standard collectors and the SDK's own are documented by their authors.
    ours = {n for n in served if not n.startswith(("process_", "python_", "temporal_"))}
    assert ours - documented == set()


def test_the_dashboard_and_scrape_config_use_the_documented_names() -> None:
    documented = _documented()
    dashboard = (DOCS / "observability" / "grafana-dashboard.json").read_text()
    used = {
        _base(name)
        for name in re.findall(
            r"\b([a-z_]+(?:_total|_seconds|_bucket|_count|_sum|_connections|_latency))\b",
            dashboard,
        )
    }
    temporal_sdk = {n for n in used if n.startswith("temporal_")}
    assert used - temporal_sdk - documented == set()
    assert {"orders_created_total", "orders_completed_total", "order_duration_seconds"} <= used

    config = (DOCS / "observability" / "prometheus.yml").read_text()
    for name in [*(f"{p}_metrics_port" for p in PROCESSES), "temporal_metrics_port"]:
        port = Settings.model_fields[name].default
        assert f":{port}'" in config, f"prometheus.yml does not scrape {name} ({port})"
