"""Where the stack keeps its files, derived from this checkout's root."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Local state of `make run` (git-ignored); `make clean-data` removes it.
DATA_DIR = ROOT / ".data"
PROCFILE = ROOT / "Procfile"
