"""`python -m server.devstack [PROCESS ...]`: the whole stack, or some of its processes.

python -m server.devstack                    everything in the Procfile
python -m server.devstack temporal postgres  only what the services need
"""

from __future__ import annotations

import argparse
import os
import sys

from server.core.settings import load_settings
from server.devstack import processes
from server.devstack.endpoints import describe
from server.devstack.environment import stack_environment
from server.devstack.paths import DATA_DIR, PROCFILE, ROOT
from server.devstack.security import security_environment


def main(argv: list[str] | None = None) -> int:
    procfile = processes.read_procfile(PROCFILE)
    parser = argparse.ArgumentParser(
        prog="python -m server.devstack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "only", nargs="*", metavar="PROCESS", help=f"start only these: {', '.join(procfile)}"
    )
    args = parser.parse_args(argv)
    if unknown := set(args.only) - procfile.keys():
        parser.error(f"not in {PROCFILE.name}: {', '.join(sorted(unknown))}")
    selected = {name: cmd for name, cmd in procfile.items() if not args.only or name in args.only}

    # Temporal's database file and Postgres's data directory live here.
    DATA_DIR.mkdir(exist_ok=True)
    os.environ.update(stack_environment(os.environ, interactive=sys.stdout.isatty()))
    settings = load_settings()
    # Made on first run: the development secret and tokens, and certificates with TLS on.
    extra_env = security_environment(selected, os.environ)
    print(describe(selected, settings, os.environ, extra_env), flush=True)
    return processes.run(selected, cwd=ROOT, extra_env=extra_env)


if __name__ == "__main__":
    sys.exit(main())
