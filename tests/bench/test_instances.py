"""`--scale`: each instance's ports and settings, and figures added up by process.

No process is started: ports come from a counter, CPU seconds and /metrics
samples are made up.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.samples import Sample

from bench import report, window
from bench.cpu import ORDERS, CpuMeter, by_kind
from bench.instances import CALLED, METRICS_ENDPOINTS, SERVICES, addresses, kind_of, on_free_ports
from bench.stack import Platform
from clients.channels import channel_target


def counting(*repeats: int) -> Callable[[], int]:
    """Free ports 40001, 40002, ... after `repeats`, which a careless kernel gives again."""
    ports = itertools.chain(repeats, itertools.count(40001))
    return lambda: next(ports)


def platform(tmp_path: Path, scale: int) -> Platform:
    return Platform(
        tree=tmp_path,
        logs=tmp_path,
        database_url="postgresql://postgres@127.0.0.1:5432/postgres",
        temporal_address="127.0.0.1:7233",
        task_queue="orders-test",
        scale=scale,
    )


def test_each_instance_has_ports_of_its_own_and_make_runs_names() -> None:
    first, second = on_free_ports(2, counting())
    assert (first.name("orders"), second.name("orders"), second.name("worker")) == (
        "orders",
        "orders.2",
        "worker.2",
    )
    every = [*first.ports.values(), *first.metrics_ports.values()]
    every += [*second.ports.values(), *second.metrics_ports.values()]
    assert len(every) == len(set(every)) == 2 * (len(SERVICES) + len(METRICS_ENDPOINTS))
    env = second.port_env()
    assert env["ORDERS_PORT"] == str(second.ports["orders"])
    # The front door's and the worker's Temporal SDK metrics move with them.
    for setting in ("ORDERS_TEMPORAL_METRICS_PORT", "TEMPORAL_METRICS_PORT", "WORKER_METRICS_PORT"):
        assert env[setting] not in first.port_env().values()


def test_a_port_given_twice_is_asked_for_again() -> None:
    (only,) = on_free_ports(1, counting(40001, 40001))
    ports = [*only.ports.values(), *only.metrics_ports.values()]
    assert len(ports) == len(set(ports))


def test_callers_are_told_every_instance_of_each_service_they_call() -> None:
    assert addresses(on_free_ports(1, counting())) == {}
    first, second = on_free_ports(2, counting())
    told = addresses([first, second])
    assert set(told) == {f"{service.upper()}_ADDRESS" for service in CALLED}
    payments = told["PAYMENTS_ADDRESS"]
    assert payments == f"{first.target('payments')},{second.target('payments')}"
    target, _ = channel_target(payments)
    assert target == f"ipv4:{payments}"


def test_one_instance_runs_with_todays_settings(tmp_path: Path) -> None:
    one = platform(tmp_path, 1)
    (only,) = one.instances
    env = one.env("orders")
    # Callers find each service on its port, as they always have.
    for setting in (f"{service.upper()}_ADDRESS" for service in CALLED):
        assert env.get(setting) == os.environ.get(setting)
    assert env["ORDERS_PORT"] == str(only.ports["orders"])
    assert one.target("orders") == only.target("orders")
    assert one.metrics_urls("orders") == [only.metrics_url("orders")]


def test_each_instance_listens_on_its_ports_and_calls_every_instance(tmp_path: Path) -> None:
    two = platform(tmp_path, 2)
    first, second = two.instances
    worker = two.env("worker", second)
    assert worker["WORKER_METRICS_PORT"] == str(second.metrics_ports["worker"])
    assert worker["TEMPORAL_METRICS_PORT"] == str(second.metrics_ports["temporal"])
    assert worker["SERVICE_TOKEN_FILE"].endswith("worker.token")
    assert worker["INVENTORY_ADDRESS"] == two.target("inventory")
    assert two.env("orders", first)["ORDERS_PORT"] == str(first.ports["orders"])
    # The benchmark's callers spread over every front door; its window reads each one.
    assert two.target("orders") == f"{first.target('orders')},{second.target('orders')}"
    assert two.metrics_urls("orders") == [i.metrics_url("orders") for i in (first, second)]


def test_cpu_is_added_up_by_process_and_kept_by_instance() -> None:
    assert (kind_of("orders.2"), kind_of("orders"), kind_of("orders_temporal")) == (
        "orders",
        "orders",
        "orders_temporal",
    )
    spent = {"orders": 0.5, "orders.2": 0.3, "worker": 1.0, "worker.2": 1.2, "temporal": 0.4}
    assert by_kind(spent) == pytest.approx({"orders": 0.8, "worker": 2.2, "temporal": 0.4})
    meter = CpuMeter()
    meter.seconds[ORDERS].update(spent)
    assert meter.per_unit_ms(ORDERS, 10) == {
        "orders": 80.0,
        "temporal": 40.0,
        "worker": 220.0,
        "all": 340.0,
    }
    by_instance = meter.per_unit_ms(ORDERS, 10, by_instance=True)
    assert (by_instance["orders.2"], by_instance["all"]) == (30.0, 340.0)


def test_the_json_keeps_cpu_by_instance_only_when_there_are_several(
    capsys: pytest.CaptureFixture[str],
) -> None:
    meter = CpuMeter()
    meter.watch("orders", os.getpid())
    meter.seconds[ORDERS].update({"orders": 0.5})
    assert set(meter.figures(10, 10, 10)) == set(report.CPU_COLUMNS)
    meter.watch("orders.2", os.getpid())
    meter.seconds[ORDERS].update({"orders.2": 0.3})
    figures = meter.figures(10, 10, 10)
    assert figures["per_order_by_instance"] == {"orders": 50.0, "orders.2": 30.0, "all": 80.0}
    report.print_cpu(figures, 2)
    printed = capsys.readouterr().out
    assert "2 instances of each added up" in printed and "orders.2" not in printed
    # The budget is judged on the front doors added up.
    (front_door, _) = report.budget_rows(figures["per_order"], None)
    assert (front_door.figure, front_door.measured) == ("CPU per order: front door (orders)", 80.0)


def test_rss_is_the_largest_instances() -> None:
    row = report._rss_row({"orders": 110.0, "orders.2": 120.0, "worker": 180.0}, "orders", "x")
    assert (row.measured, row.note) == (120.0, "the largest of 2")
    single = report._rss_row({"orders": 110.0, "worker": 180.0}, "orders", "x")
    assert (single.measured, single.note) == (110.0, "")


def test_front_doors_metrics_wakes_are_added_up_and_gauges_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each front door's gauges count the platform's orders (its projection), not its own."""
    served = {
        "a": [(window.LOOP_LAG, "0.01", 90.0), (window.LOOP_LAG, "+Inf", 100.0)],
        "b": [
            (window.LOOP_LAG, "0.01", 40.0),
            (window.LOOP_LAG, "+Inf", 50.0),
            (window.GC_PAUSE, "0.01", 3.0),
            (window.GC_PAUSE, "+Inf", 4.0),
        ],
    }
    gauges = {"a": 30.0, "b": 32.0}

    def scrape(url: str) -> list[Sample]:
        lag = [Sample(name, {"le": le}, value) for name, le, value in served[url]]
        paused = [Sample(window.GC_PAUSE_SUM, {"generation": "2"}, 0.2)] if url == "b" else []
        return [*lag, *paused, Sample("admission_orders_in_flight", {}, gauges[url])]

    monkeypatch.setattr(window, "_scrape", scrape)
    added = window._histograms(["a", "b"])
    assert added[window.LOOP_LAG] == {0.01: 130.0, float("inf"): 150.0}
    assert added[window.GC_PAUSE] == {0.01: 3.0, float("inf"): 4.0}
    assert added[window.GC_PAUSE_SUM] == {float("inf"): 0.2}
    assert window._gauges(["a", "b"]) == {"admission_orders_in_flight": 32.0}
