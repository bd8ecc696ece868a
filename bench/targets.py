"""What a run is checked against: the ratios the project aims for, and a CPU budget per process.

Every target of the main table and every CPU budget is here, so that a new
aim is one line to change. The ratios are the platform's figure over its
baseline's in the same run (docs/performance.md, What each figure means),
and so is each CPU budget, against the floor's CPU per workflow;
bench/report.py judges them and prints met or MISSED.
"""

from __future__ import annotations

from dataclasses import dataclass

# Targets as "OPERATOR BOUND" on the ratio to the baseline named. The CreateOrder
# target is issue 8's; the others are issue 20's.
# orders/s to SHIPPED, against the bare workflow of 4 regular activities.
ORDERS_PER_SECOND = ">= 1.0"
# orders/s to SHIPPED, against the engine's floor (4 local activities, no sandbox);
# the issue aims for 0.7 and counts 0.6 as met.
ORDERS_PER_SECOND_FLOOR = ">= 0.6"
ORDERS_PER_SECOND_FLOOR_AIM = 0.7
# latency to SHIPPED p99, against the bare workflow's start to its result.
LATENCY_P99 = "<= 1.0"
# CreateOrder p99, against the bare update-with-start; any refusal misses it too.
CREATE_ORDER_P99 = "<= 1.5"
# calls/s against the bare grpc.aio server answering the same messages.
GET_ORDER = ">= 0.85"
LIST_ORDERS = ">= 0.6"

# What a floor workflow cost in CPU on the machine the budgets below were set
# on, to turn them into multiples of it. The run they come from measured the
# floor's rate, 31.8-35.4 workflows/s, not its CPU; the floor keeps 1.1 to 1.3
# of the two cores busy in every run since, so a floor workflow took 31 to 41
# ms there: 36 in the middle (docs/performance.md, "The CPU budget").
FLOOR_MS_WHEN_SET = 36.0


@dataclass(frozen=True)
class Budget:
    """The CPU one order may cost one process of the platform.

    Set in milliseconds at the pace of the machine the budgets were set on,
    and judged against the floor's CPU per workflow in the same run, so that
    a host that runs everything slower or faster does not move the verdict.
    """

    # The process as bench/cpu.py names it.
    process: str
    label: str
    ms: float
    # Where the budget comes from, printed beside the verdict.
    why: str

    @property
    def of_the_floor(self) -> float:
        """The budget as a multiple of a floor workflow's CPU, to two places as printed."""
        return round(self.ms / FLOOR_MS_WHEN_SET, 2)


# Milliseconds of CPU per order, measured while the orders run at the concurrency.
# Set from one run at the default sizes on the 2-core machine (docs/performance.md),
# which measured 169 ms per order in all: worker 65, Temporal 44, orders 17,
# Postgres 14, inventory 11, payments 10, shipping 4, the benchmark's client the
# rest. Issue 20 asks for the worker's share halved; the others may not grow, and
# have their figure of that run rounded up by about a tenth for the run-to-run noise.
CPU_BUDGETS = (
    Budget("worker", "worker", 33, "65 ms halved, issue 20"),
    Budget("temporal", "Temporal server", 48, "was 44 ms"),
    Budget("orders", "front door (orders)", 19, "was 17 ms"),
    Budget("postgres", "Postgres", 16, "was 14 ms"),
    Budget("inventory", "inventory", 12, "was 11 ms"),
    Budget("payments", "payments", 11, "was 10 ms"),
    Budget("shipping", "shipping", 5, "was 4 ms"),
)
