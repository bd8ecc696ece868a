"""What the numbers were measured on: the machine and the software under the benchmark."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

import psutil

from bench.processes import venv_program


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _temporal_cli() -> str:
    result = subprocess.run(
        [venv_program("temporal"), "--version"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def describe_machine() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "temporalio": metadata.version("temporalio"),
        "grpcio": metadata.version("grpcio"),
        "temporal_cli": _temporal_cli(),
    }


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages: how busy the shared box was."""
    return [round(x, 2) for x in os.getloadavg()]
