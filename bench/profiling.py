"""Sampling profiles of the platform's processes under load, with py-spy.

py-spy attaches to a running process from outside (it reads the process's
memory), so the platform runs unchanged. Only the thread holding the GIL is
sampled (`--gil`): what is counted is Python's CPU time, not threads waiting
in a selector or a queue. Each recording is kept as collapsed stacks; once
the run is over (so the drawing costs the measured processes nothing) each
is summarised as text and drawn as a flame graph (bench/flamegraph.py).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bench import flamegraph
from bench.processes import venv_program

# Samples per second: enough for a few thousand samples in a phase, little
# enough that the pauses py-spy makes to read a stack do not dominate.
RATE = 100


class Profiler:
    def __init__(self, directory: Path, tree: Path, *, enabled: bool) -> None:
        self.directory = directory
        self.tree = tree
        self.enabled = enabled
        # "phase/process" -> the files written for it.
        self.outputs: dict[str, dict[str, str]] = {}
        self._recorded: dict[str, Path] = {}

    @contextlib.contextmanager
    def recording(self, phase: str, pids: dict[str, int]) -> Iterator[None]:
        """Records each of `pids` (by process name) while the block runs."""
        if not self.enabled:
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        spies = {}
        for name, pid in pids.items():
            collapsed = self.directory / f"{phase}-{name}.collapsed"
            command = [venv_program("py-spy"), "record", "--pid", str(pid), "--rate", str(RATE)]
            command += ["--gil", "--full-filenames", "--format", "raw", "--output", str(collapsed)]
            spies[name] = (
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                collapsed,
            )
        try:
            yield
        finally:
            for spy, _ in spies.values():
                # py-spy writes what it sampled when interrupted, as on Ctrl-C.
                spy.send_signal(signal.SIGINT)
            for name, (spy, collapsed) in spies.items():
                _, stderr = spy.communicate(timeout=60)
                if collapsed.exists():
                    self._recorded[f"{phase}/{name}"] = collapsed
                else:
                    message = stderr.decode(errors="replace").strip()
                    self.outputs[f"{phase}/{name}"] = {"error": message[-500:]}

    def summarise(self) -> None:
        """Writes each recording's summary and flame graph beside it."""
        for key, collapsed in self._recorded.items():
            phase, _, name = key.partition("/")
            stacks = flamegraph.read_collapsed(collapsed)
            summary = collapsed.with_suffix(".summary.txt")
            picture = collapsed.with_suffix(".flame.png")
            title = f"{name} during {phase}"
            summary.write_text(flamegraph.summarise(stacks, self.tree, title))
            flamegraph.draw(stacks, picture, self.tree, title)
            self.outputs[key] = {
                "collapsed": str(collapsed),
                "summary": str(summary),
                "flame_graph": str(picture),
            }
