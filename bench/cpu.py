"""CPU time by process over a phase: where the machine's two cores went.

Everything measured shares the machine's cores: the Temporal server, Postgres,
the platform's processes, the baselines' workers and the benchmark's own
client. The CPU seconds each spent in a phase, divided by what the phase
completed, say what one order (or one baseline workflow) costs each of them.

Each instance of a platform process is watched apart ("orders", "orders.2",
under --scale), and the figures add the instances of a process up: "orders"
is every front door, "worker" every worker.

Beside them, how busy the whole machine was in each phase, in cores: a phase
that kept every core busy was held back by the CPU, one that left some idle
by something else (docs/performance.md, "What holds each closed loop back").
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping

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


def machine_busy_seconds() -> float:
    """CPU seconds all the machine's cores have spent at work since it started.

    Idle and waiting for I/O are left out, and so is time a hypervisor took
    for others (steal); a guest's time is counted in user time already.
    """
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


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
# The figures' columns, by the phase each is measured in.
COLUMN_PHASES = {
    "per_order": ORDERS,
    "per_bare_workflow": BARE_WORKFLOWS,
    "per_floor_workflow": FLOOR_WORKFLOWS,
}


class CpuMeter:
    def __init__(self) -> None:
        # name -> (process, whether its children count as its own)
        self._processes: dict[str, tuple[psutil.Process, bool]] = {}
        # phase -> process -> CPU seconds spent in it
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        # phase -> [the machine's busy CPU seconds in it, its wall-clock seconds]
        self.machine: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])

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
        busy_before, started = machine_busy_seconds(), time.monotonic()
        try:
            yield
        finally:
            after = self._snapshot()
            for name, seconds in after.items():
                self.seconds[phase][name] += max(0.0, seconds - before.get(name, seconds))
            self.machine[phase][0] += machine_busy_seconds() - busy_before
            self.machine[phase][1] += time.monotonic() - started

    def cores_busy(self, phase: str) -> float | None:
        """How many of the machine's cores were busy in `phase`, on average (None if unmeasured)."""
        busy, seconds = self.machine.get(phase, (0.0, 0.0))
        return round(busy / seconds, 2) if seconds > 0 else None

    def figures(
        self, orders: int, bare_workflows: int, floor_workflows: int
    ) -> dict[str, dict[str, float]]:
        """CPU milliseconds by process for one order, one bare workflow and one floor workflow;
        with several instances of a process, also by instance for one order; and under
        `cores_busy`, the machine's cores busy in each of the three phases (by the same
        keys) and how many it has (`machine`)."""
        completed = {
            ORDERS: orders,
            BARE_WORKFLOWS: bare_workflows,
            FLOOR_WORKFLOWS: floor_workflows,
        }
        figures = {
            key: self.per_unit_ms(phase, completed[phase]) for key, phase in COLUMN_PHASES.items()
        }
        busy = {
            key: cores
            for key, phase in COLUMN_PHASES.items()
            if (cores := self.cores_busy(phase)) is not None
        }
        if busy:
            busy["machine"] = float(psutil.cpu_count() or 0)
            figures["cores_busy"] = busy
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
