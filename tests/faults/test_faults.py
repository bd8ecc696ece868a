"""The fault suite at a small size, inside `make test`: a few faults, nothing may break.

`make faults` runs every fault with 200 orders in flight; this runs four of
them with a dozen, so that a change that loses, doubles or strands orders
under a fault fails the build.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.fault import Timing
from tests.faults.rounds import RoundSize
from tests.faults.suite import Settings, run_suite

pytestmark = pytest.mark.e2e

SMALL = Settings(
    faults=["worker-charge", "worker-booking", "payments", "orders"],
    size=RoundSize(orders=20, in_flight=12, settle_timeout=120.0, cancel_window=4.0),
    timing=Timing(restart_pause=1.0, outage=5.0, trigger_timeout=60.0),
    booking_seconds=2.0,
    slow_card_seconds=3.0,
    # This seed's first round has slow cards among its first orders, so the
    # worker can be caught in the charge step.
    seed=7,
)


async def test_no_order_is_lost_doubled_or_stuck_through_the_faults(tmp_path: Path) -> None:
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line)  # shown by pytest when the test fails

    outcome = await run_suite(SMALL, tmp_path, say=say)
    report = "\n".join(lines)

    rounds = {result.fault.name: result for result in outcome.results}
    assert list(rounds) == SMALL.faults
    for name, result in rounds.items():
        # Each fault hit what it aimed at: an order in the step, calls in flight.
        assert result.injection.on_target, f"{name}: {result.injection.what}"
        assert result.findings.placed == SMALL.size.orders
        assert result.findings.violations == 0, report
    # Callers of the killed front door saw it fail, retried, and every one of
    # their orders exists once (no loss, no duplicate: violations above).
    assert rounds["orders"].tally.errors("CreateOrder") > 0, report
