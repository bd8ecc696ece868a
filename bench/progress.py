"""The progress bar: one line for the run as a whole, one for the phase under way."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from bench.driver import Tick


class Phases:
    def __init__(self, phases: int) -> None:
        self.console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description:<44}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._overall = self._progress.add_task("benchmark", total=phases)

    def __enter__(self) -> Phases:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    @contextlib.contextmanager
    def phase(self, description: str, total: int | None = None) -> Iterator[Tick]:
        """A phase of `total` steps (unknown if None); yields the callable counting one."""
        task = self._progress.add_task(description, total=total)
        started = time.perf_counter()
        try:
            yield lambda: self._progress.advance(task)
        finally:
            self._progress.update(task, visible=False)
            self._progress.advance(self._overall)
            self.console.log(f"{description}: {time.perf_counter() - started:.1f} s")

    def log(self, message: str) -> None:
        self.console.log(message)
