"""Everything one benchmark run measured, as it is written to the JSON file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.changes import Changes
from bench.orders_load import Burst
from bench.overload import Overload
from bench.stats import Latency, Rate, Run


@dataclass(frozen=True)
class Measured:
    """A closed-loop run at the benchmark's concurrency, and the same thing one at a time."""

    concurrent: Run
    one_at_a_time: Latency


@dataclass
class Results:
    meta: dict[str, Any]
    # A workflow of four no-op regular activities, no gRPC, no database.
    baseline_workflow: Measured
    # The engine's floor: four no-op local activities, workflow code outside the
    # sandbox, one workflow task per workflow.
    floor_workflow: Measured
    # Orders from CreateOrder until SHIPPED.
    full_stack: Measured
    # The CreateOrder calls of the full_stack orders; refused ones are in its errors.
    create_order: Measured
    # An update-with-start whose update returns after one no-op activity.
    bare_update_with_start: Measured
    burst: Burst
    # Address changes and cancellations during a slow charge (None with --changes 0).
    changes: Changes | None
    # get_order, list_orders, health: the front door's; bare_*: the bare server's.
    reads: dict[str, Rate]
    # Serialized sizes of the answers both servers give.
    read_message_bytes: dict[str, int]
    # Resident memory of each platform process at the end of the run, by
    # instance under --scale ("orders", "orders.2").
    rss_mib: dict[str, float]
    # CPU milliseconds by process (and "all") per order, per bare workflow and
    # per floor workflow, while each ran at the concurrency; a process's
    # instances added up. Under --scale, also per order by instance
    # ("per_order_by_instance").
    cpu_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)
    # The overload scenario, when the run had one (--overload).
    overload: Overload | None = None
