"""The whole run: one platform, then one round per fault, each audited and printed."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.fault import Timing
from tests.faults.injectors import select
from tests.faults.report import round_block, summary_table
from tests.faults.rounds import RoundResult, RoundSize, run_round
from tests.faults.stack import running_platform


@dataclass(frozen=True)
class Settings:
    faults: list[str]
    size: RoundSize
    timing: Timing
    booking_seconds: float  # SHIPPING_BOOKING_SECONDS: time in the booking step
    slow_card_seconds: float  # PAYMENTS_SLOW_SECONDS: time tok_slow spends in the charge step
    seed: int


@dataclass
class Outcome:
    results: list[RoundResult] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return sum(r.findings.violations for r in self.results)


async def run_suite(
    settings: Settings, workdir: Path, say: Callable[[str], None] = print
) -> Outcome:
    faults = select(settings.faults)
    rng = random.Random(settings.seed)
    run_id = secrets.token_hex(3)
    outcome = Outcome()
    say(f"fault suite {run_id}: {len(faults)} rounds; processes and logs in {workdir}")
    async with running_platform(
        workdir,
        SHIPPING_BOOKING_SECONDS=str(settings.booking_seconds),
        PAYMENTS_SLOW_SECONDS=str(settings.slow_card_seconds),
    ) as platform:
        for number, fault in enumerate(faults, start=1):
            result = await run_round(
                platform,
                fault,
                label=f"{run_id}-{number}",
                size=settings.size,
                timing=settings.timing,
                rng=rng,
            )
            outcome.results.append(result)
            say(round_block(number, result))
    say(summary_table(outcome.results))
    verdict = "nothing lost, doubled or stuck; stock conserved"
    if outcome.violations:
        verdict = f"{outcome.violations} broken promises (see the rounds above)"
    say(f"fault suite {run_id}: {verdict}")
    return outcome
