"""A throwaway database for a test session (server/devstack/scratch_database.py)."""

from __future__ import annotations

from server.devstack.scratch_database import scratch_database

__all__ = ["scratch_database"]
