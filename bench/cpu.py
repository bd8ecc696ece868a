"""CPU time by process over a phase: where the machine's two cores went.

Everything measured shares the machine's cores: the Temporal server, Postgres,
the platform's processes, the baselines' workers and the benchmark's own
client. The CPU seconds each spent in a phase, divided by what the phase
completed, say what one order (or one baseline workflow) costs each of them.

Each instance of a platform process is watched apart ("orders", "orders.2",
under --scale), and the figures add the instances of a process up: "orders"
is every front door, "worker" every worker.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil

from bench.instances import kind_of


def _cpu_seconds(process: psutil.Process, *, reaped: bool = False) -> float:
    """User and system time of a process (and, if `reaped`, of its children that ended)."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    own = times.user + times.system
    return own + times.children_user + times.children_system if reaped else own


def _tree_seconds(process: psutil.Process) -> float:
    """A server and its workers, those alive and those that ended (Postgres's backends)."""
    try:
        children = process.children(recursive=True)
    except psutil.Error:
        children = []
    return _cpu_seconds(process, reaped=True) + sum(_cpu_seconds(c) for c in children)


def find_under(directory: Path, name: str) -> psutil.Process | None:
    """The oldest process called `name` whose command line mentions `directory`."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "create_time"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if process.info["name"] == name and str(directory) in cmdline:
            found.append(process)
    return min(found, key=lambda p: p.info["create_time"]) if found else None


def find_child(name: str) -> psutil.Process | None:
    """A child of this process called `name` (the Temporal dev server)."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == name:
                return child
    return None


def by_kind(seconds: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds by instance ("orders.2"), added up by process ("orders")."""
    added: dict[str, float] = defaultdict(float)
    for name, spent in seconds.items():
        added[kind_of(name)] += spent
    return dict(added)


# The phases measured, each at the concurrency: the platform's orders, the bare
# workflows (regular activities) and the engine's floor (local activities).
ORDERS = "orders"
BARE_WORKFLOWS = "bare_workflows"
FLOOR_WORKFLOWS = "floor_workflows"


class CpuMeter:
    def __init__(self) -> None:
        # name -> (process, whether its children count as its own)
        self._processes: dict[str, tuple[psutil.Process, bool]] = {}
        # phase -> process -> CPU seconds spent in it
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def watch(
        self, name: str, process: psutil.Process | int | None, *, with_children: bool = False
    ) -> None:
        if process is not None:
            found = process if isinstance(process, psutil.Process) else psutil.Process(process)
            self._processes[name] = (found, with_children)

    def _snapshot(self) -> dict[str, float]:
        return {
            name: _tree_seconds(process) if tree else _cpu_seconds(process)
            for name, (process, tree) in self._processes.items()
        }

    @contextlib.contextmanager
    def measuring(self, phase: str) -> Iterator[None]:
        """Adds the CPU time each watched process spends in the block to `phase`."""
        before = self._snapshot()
        try:
            yield
        finally:
            after = self._snapshot()
            for name, seconds in after.items():
                self.seconds[phase][name] += max(0.0, seconds - before.get(name, seconds))

    def figures(
        self, orders: int, bare_workflows: int, floor_workflows: int
    ) -> dict[str, dict[str, float]]:
        """CPU milliseconds by process for one order, one bare workflow and one floor workflow;
        with several instances of a process, also by instance for one order."""
        figures = {
            "per_order": self.per_unit_ms(ORDERS, orders),
            "per_bare_workflow": self.per_unit_ms(BARE_WORKFLOWS, bare_workflows),
            "per_floor_workflow": self.per_unit_ms(FLOOR_WORKFLOWS, floor_workflows),
        }
        if any(kind_of(name) != name for name in self._processes):
            figures["per_order_by_instance"] = self.per_unit_ms(ORDERS, orders, by_instance=True)
        return figures

    def per_unit_ms(self, phase: str, units: int, *, by_instance: bool = False) -> dict[str, float]:
        """Milliseconds of CPU per completed unit of `phase`, by process (its instances
        added up, unless `by_instance`), and in all."""
        spent = self.seconds.get(phase, {})
        if not units or not spent:
            return {}
        shares = spent if by_instance else by_kind(spent)
        result = {name: round(1000 * s / units, 1) for name, s in sorted(shares.items())}
        result["all"] = round(1000 * sum(spent.values()) / units, 1)
        return result
