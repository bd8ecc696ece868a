"""`python -m tests.faults`: flags, the work folder, and the exit code.

Exit codes: 0 when every promise held, 1 when any order was lost, charged
twice, stuck, or stock was not conserved (or the books could not be read),
2 for bad flags.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from tests.faults.fault import Timing
from tests.faults.injectors import GROUPS, all_faults, select
from tests.faults.rounds import RoundSize
from tests.faults.suite import Settings, run_suite


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.faults",
        description="Keeps orders in flight through injected faults, then audits the books.",
    )
    names = ", ".join([*all_faults(), *GROUPS])
    p.add_argument("--faults", default="all", help=f"comma-separated, run in order: {names}")
    p.add_argument("--in-flight", type=int, default=200, help="orders unsettled at once")
    p.add_argument("--orders", type=int, help="orders per round (default: --in-flight)")
    p.add_argument(
        "--outage", type=float, default=20.0, help="seconds a downstream service stays dead"
    )
    p.add_argument(
        "--long-outage",
        type=float,
        default=60.0,
        help="seconds payments stays dead in the payments-long round",
    )
    p.add_argument(
        "--restart-pause",
        type=float,
        default=2.0,
        help="seconds before a killed worker, front door, Temporal or Postgres starts again",
    )
    p.add_argument(
        "--settle-timeout",
        type=float,
        default=300.0,
        help="seconds an order may take to settle once the fault is over; then it is stuck",
    )
    p.add_argument(
        "--trigger-timeout",
        type=float,
        default=120.0,
        help="longest wait for the moment to inject (e.g. an order in the step to interrupt)",
    )
    p.add_argument(
        "--cancel-window",
        type=float,
        default=6.0,
        help="cancellations come within this many seconds",
    )
    p.add_argument(
        "--booking-seconds", type=float, default=2.0, help="SHIPPING_BOOKING_SECONDS of the stack"
    )
    p.add_argument(
        "--slow-card-seconds", type=float, default=3.0, help="PAYMENTS_SLOW_SECONDS of the stack"
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the order mix")
    p.add_argument(
        "--workdir", type=Path, help="where logs and data go (default: a new temporary folder)"
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the work folder even when all went well"
    )
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        faults=[name.strip() for name in args.faults.split(",") if name.strip()],
        size=RoundSize(
            orders=args.orders or args.in_flight,
            in_flight=args.in_flight,
            settle_timeout=args.settle_timeout,
            cancel_window=args.cancel_window,
        ),
        timing=Timing(
            restart_pause=args.restart_pause,
            outage=args.outage,
            trigger_timeout=args.trigger_timeout,
            long_outage=args.long_outage,
        ),
        booking_seconds=args.booking_seconds,
        slow_card_seconds=args.slow_card_seconds,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    settings = settings_from(args)
    try:
        select(settings.faults)
    except ValueError as error:
        p.error(str(error))
    if args.in_flight < 1 or (args.orders is not None and args.orders < 1):
        p.error("--in-flight and --orders must be at least 1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="faults-"))
    workdir.mkdir(parents=True, exist_ok=True)
    outcome = asyncio.run(run_suite(settings, workdir))
    if outcome.violations:
        print(f"logs kept in {workdir}", flush=True)
        return 1
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
