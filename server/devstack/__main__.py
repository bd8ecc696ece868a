"""`python -m server.devstack [PROCESS ...]`: the whole stack, or some of its processes.

python -m server.devstack                    everything in the Procfile
python -m server.devstack temporal postgres  only what the services need
python -m server.devstack --scale 2          two of each service and of the worker
"""

from __future__ import annotations

import argparse
import os
import sys

from server.core.settings import load_settings
from server.devstack import processes
from server.devstack.endpoints import describe
from server.devstack.environment import stack_environment
from server.devstack.instances import scale
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
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        metavar="N",
        help="N instances of each service and of the worker (server/devstack/instances.py)",
    )
    args = parser.parse_args(argv)
    if unknown := set(args.only) - procfile.keys():
        parser.error(f"not in {PROCFILE.name}: {', '.join(sorted(unknown))}")
    selected = {name: cmd for name, cmd in procfile.items() if not args.only or name in args.only}

    # Temporal's database file and Postgres's data directory live here.
    DATA_DIR.mkdir(exist_ok=True)
    os.environ.update(stack_environment(os.environ, interactive=sys.stdout.isatty()))
    settings = load_settings()
    scaled = scale(selected, settings, os.environ, args.scale)
    os.environ.update(scaled.shared_env)
    # Made on first run: the development secret and tokens, and certificates with TLS on.
    extra_env = security_environment(selected, os.environ)
    for name, ports in scaled.env.items():
        extra_env[name] = {**extra_env.get(name.partition(".")[0], {}), **ports}
    print(describe(selected, settings, os.environ, extra_env), flush=True)
    if scaled.lines:
        print("\n".join(["  and, each with its own ports:", *scaled.lines]), flush=True)
    return processes.run(scaled.processes, cwd=ROOT, extra_env=extra_env)


if __name__ == "__main__":
    sys.exit(main())
