"""The benchmark's flags: sizes, concurrency, which Temporal and which checkout."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from bench.processes import BENCH_ROOT
from bench.temporal_server import MODES

DEFAULT_OUT_DIR = BENCH_ROOT / ".data" / "bench"


@dataclass(frozen=True)
class OverloadOptions:
    """The overload scenario (bench/overload.py): off unless `enabled`."""

    enabled: bool = False
    # Offered load as multiples of the measured capacity, each for `seconds`.
    factors: tuple[float, ...] = (2.0, 5.0)
    seconds: float = 25.0
    customers: int = 200
    # One customer's flood, and the polite customer's orders meanwhile.
    flood_calls: int = 1000
    flood_seconds: float = 10.0
    polite_orders: int = 20


@dataclass(frozen=True)
class ChangesOptions:
    """The changes of mind during a slow charge (bench/changes.py): off when `orders` is 0."""

    orders: int = 20
    in_flight: int = 5


@dataclass(frozen=True)
class Options:
    concurrency: int
    workflows: int
    floor_workflows: int
    orders: int
    one_at_a_time: int
    burst: int
    read_concurrency: int
    read_seconds: float
    temporal: str
    tree: Path
    out: Path
    profile: bool
    booking_seconds: float
    overload: OverloadOptions
    changes: ChangesOptions
    # Extra settings for the platform's processes (NAME=VALUE flags).
    platform_env: dict[str, str]
    # Instances of each of the platform's processes, as under `make run SCALE=n`.
    scale: int = 1
    # Runs one after the other, each on a stack of its own, summed up at the end.
    runs: int = 1

    @property
    def workdir(self) -> Path:
        """Logs and profiles of the run, beside its JSON file."""
        return self.out.with_suffix("")

    def series(self) -> list[Options]:
        """The options of each run: one JSON file each, `OUT-1.json` ... when there are several."""
        if self.runs == 1:
            return [self]
        return [
            replace(self, out=self.out.with_name(f"{self.out.stem}-{i}{self.out.suffix}"))
            for i in range(1, self.runs + 1)
        ]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _factors(text: str) -> tuple[float, ...]:
    try:
        factors = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated numbers, e.g. 2,5") from None
    if not factors or any(f <= 0 for f in factors):
        raise argparse.ArgumentTypeError("at least one multiple, each more than 0")
    return factors


def _setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.isupper():
        raise argparse.ArgumentTypeError("NAME=VALUE, e.g. ADMISSION_IN_FLIGHT=60")
    return name, value


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the platform against bare baselines on one Temporal server.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    size = parser.add_argument_group("sizes")
    size.add_argument("--concurrency", type=_positive_int, default=50, help="operations in flight")
    size.add_argument("--workflows", type=_positive_int, default=200, help="bare workflows")
    size.add_argument(
        "--floor-workflows",
        type=_positive_int,
        default=600,
        # At 50 in flight, 100 a half are two rounds of the loop over in 2 to 3
        # seconds, and two halves of a run differed by up to 40%
        # (docs/performance.md, "A third host: the floor's ratio, run to run").
        help="workflows of the engine's floor",
    )
    size.add_argument(
        "--orders",
        type=_positive_int,
        default=200,
        help="orders followed to SHIPPED (and bare update-with-starts)",
    )
    size.add_argument(
        "--one-at-a-time",
        type=_positive_int,
        default=10,
        help="orders, bare workflows and update-with-starts timed one after the other",
    )
    size.add_argument("--burst", type=_positive_int, default=200, help="CreateOrder calls at once")
    size.add_argument("--read-concurrency", type=_positive_int, default=50, help="reads in flight")
    size.add_argument(
        "--read-seconds",
        type=_positive_float,
        default=5.0,
        help="how long each read is timed on each server (in two halves)",
    )
    parser.add_argument(
        "--temporal",
        choices=MODES,
        default="file",
        help="file: the dev server persisting to a file, as `make run` has it; memory: in memory",
    )
    parser.add_argument(
        "--tree",
        type=Path,
        default=BENCH_ROOT,
        help="the checkout whose services and worker are run (e.g. a `git worktree`)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the JSON file to write (the PNG chart and a folder of logs go beside it); "
        "default .data/bench/bench-TIMESTAMP.json",
    )
    parser.add_argument(
        "--runs",
        type=_positive_int,
        default=1,
        help="runs one after the other, each with a stack of its own and a JSON file of its "
        "own (OUT-1.json ...), then each figure over them all, as `python -m bench.summary`",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record py-spy profiles under load: every platform process while orders run, "
        "the front door while it reads, it and the worker in the overload windows",
    )
    parser.add_argument(
        "--booking-seconds",
        type=float,
        default=0.0,
        help="SHIPPING_BOOKING_SECONDS: how long the simulated carrier takes",
    )
    parser.add_argument(
        "--scale",
        type=_positive_int,
        default=1,
        help="instances of each of the platform's processes (the four services and the "
        "worker), as `make run SCALE=n` runs them; the baselines stay single",
    )
    parser.add_argument(
        "--platform-env",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the platform's processes (repeatable), e.g. "
        "ADMISSION_IN_FLIGHT=60; the README's defaults otherwise",
    )
    changes = parser.add_argument_group(
        "changes of mind (docs/performance.md): address changes and cancellations during a step"
    )
    changes_defaults = ChangesOptions()
    changes.add_argument(
        "--changes",
        type=_count,
        default=changes_defaults.orders,
        help="orders placed with the slow card (tok_slow) and changed while it is charged; "
        "every other one also cancelled (0: no such phase)",
    )
    changes.add_argument(
        "--changes-in-flight",
        type=_positive_int,
        default=changes_defaults.in_flight,
        help="of those orders, how many at a time",
    )
    overload = parser.add_argument_group(
        "overload (docs/performance.md): capacity, open-loop load beyond it, one customer's flood"
    )
    overload.add_argument(
        "--overload",
        action="store_true",
        help="after the other phases, offer multiples of the measured capacity and a flood",
    )
    defaults = OverloadOptions()
    overload.add_argument(
        "--overload-factors",
        type=_factors,
        default=defaults.factors,
        metavar="2,5",
        help="offered CreateOrder rates, as multiples of the orders/s to SHIPPED measured",
    )
    overload.add_argument(
        "--overload-seconds",
        type=_positive_float,
        default=defaults.seconds,
        help="how long each rate is offered",
    )
    overload.add_argument(
        "--overload-customers",
        type=_positive_int,
        default=defaults.customers,
        help="customers the offered orders are spread over",
    )
    overload.add_argument(
        "--flood-calls",
        type=_positive_int,
        default=defaults.flood_calls,
        help="CreateOrder calls of the one customer flooding",
    )
    overload.add_argument(
        "--flood-seconds",
        type=_positive_float,
        default=defaults.flood_seconds,
        help="over how long the flood's calls are sent",
    )
    overload.add_argument(
        "--polite-orders",
        type=_positive_int,
        default=defaults.polite_orders,
        help="orders another customer places, evenly over the flood",
    )
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    if not (tree / "Procfile").exists() or not (tree / "worker").is_dir():
        parser.error(f"{tree} is not a checkout of this project")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = (args.out or DEFAULT_OUT_DIR / f"bench-{stamp}.json").resolve()
    return Options(
        concurrency=args.concurrency,
        workflows=args.workflows,
        floor_workflows=args.floor_workflows,
        orders=args.orders,
        one_at_a_time=args.one_at_a_time,
        burst=args.burst,
        read_concurrency=args.read_concurrency,
        read_seconds=args.read_seconds,
        temporal=args.temporal,
        tree=tree,
        out=out,
        profile=args.profile,
        booking_seconds=args.booking_seconds,
        overload=OverloadOptions(
            enabled=args.overload,
            factors=args.overload_factors,
            seconds=args.overload_seconds,
            customers=args.overload_customers,
            flood_calls=args.flood_calls,
            flood_seconds=args.flood_seconds,
            polite_orders=args.polite_orders,
        ),
        changes=ChangesOptions(orders=args.changes, in_flight=args.changes_in_flight),
        platform_env=dict(args.platform_env),
        scale=args.scale,
        runs=args.runs,
    )
