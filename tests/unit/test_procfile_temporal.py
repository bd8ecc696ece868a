"""Every Temporal server the project starts for itself is configured from the Procfile."""

from __future__ import annotations

from pathlib import Path

from server.devstack.paths import PROCFILE
from server.devstack.processes import (
    temporal_dynamic_config,
    temporal_dynamic_config_flags,
    temporal_sqlite_pragma_flags,
    temporal_sqlite_pragmas,
)


def test_the_settings_are_read_from_the_temporal_line(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# a comment\n"
        "web: python -m web --dynamic-config-value not.temporal=1\n"
        "temporal: temporal server start-dev --port ${PORT:-7233}"
        " --dynamic-config-value a.b=1 --log-level warn --dynamic-config-value 'c.d=\"1s\"'"
        " --sqlite-pragma journal_mode=wal --db-filename x.db --sqlite-pragma synchronous=full\n"
    )
    assert temporal_dynamic_config(procfile) == ["a.b=1", 'c.d="1s"']
    assert temporal_dynamic_config_flags(procfile) == [
        "--dynamic-config-value",
        "a.b=1",
        "--dynamic-config-value",
        'c.d="1s"',
    ]
    assert temporal_sqlite_pragmas(procfile) == ["journal_mode=wal", "synchronous=full"]
    assert temporal_sqlite_pragma_flags(procfile) == [
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=full",
    ]


def test_a_procfile_without_temporal_has_none(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: python -m web\n")
    assert temporal_dynamic_config(procfile) == []
    assert temporal_sqlite_pragmas(procfile) == []


def test_make_runs_temporal_has_one_partition_per_task_queue() -> None:
    # What the tests, the fault suite and the benchmark now run with too.
    settings = temporal_dynamic_config(PROCFILE)
    assert "matching.numTaskqueueReadPartitions=1" in settings
    assert "matching.numTaskqueueWritePartitions=1" in settings
