"""`python -m tests.faults --help`: the fault suite (see tests/faults/cli.py)."""

import sys

from tests.faults.cli import main

sys.exit(main())
