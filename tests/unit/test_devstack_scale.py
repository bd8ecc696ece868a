"""`make run SCALE=n`: the added instances' ports, and the callers' address lists."""

from __future__ import annotations

from server.core.settings import Settings
from server.devstack.instances import scale

PROCFILE = {
    "temporal": "temporal server start-dev",
    "orders": "python -m server orders",
    "payments": "python -m server payments",
    "worker": "python -m worker",
}


def test_one_instance_changes_nothing() -> None:
    scaled = scale(PROCFILE, Settings(), {}, 1)
    assert scaled.processes == PROCFILE
    assert not scaled.env and not scaled.shared_env


def test_added_instances_shift_every_port_and_callers_get_every_address() -> None:
    scaled = scale(PROCFILE, Settings(), {}, 3)

    assert list(scaled.processes) == [*PROCFILE, "orders.2", "orders.3", "payments.2",
                                      "payments.3", "worker.2", "worker.3"]  # fmt: skip
    assert scaled.processes["worker.3"] == "python -m worker"
    assert scaled.env["orders.3"] == {
        "ORDERS_PORT": "50251",
        "ORDERS_METRICS_PORT": "9301",
        "ORDERS_TEMPORAL_METRICS_PORT": "9307",
    }
    assert scaled.env["worker.2"] == {
        "WORKER_METRICS_PORT": "9205",
        "TEMPORAL_METRICS_PORT": "9206",
    }
    # Only services that run are listed; Temporal is never scaled.
    assert scaled.shared_env == {
        "PAYMENTS_ADDRESS": "127.0.0.1:50052,127.0.0.1:50152,127.0.0.1:50252"
    }


def test_an_address_given_explicitly_wins() -> None:
    scaled = scale(PROCFILE, Settings(), {"PAYMENTS_ADDRESS": "10.0.0.9:50052"}, 2)
    assert "PAYMENTS_ADDRESS" not in scaled.shared_env
