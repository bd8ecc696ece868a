"""The fault suite: orders kept in flight through injected faults, then the books audited.

`python -m tests.faults` (or `make faults`) runs it; test_faults.py runs a
small size of it inside `make test`. The parts:

    stack.py, servers.py        the platform it starts and breaks: its own Temporal
                                (state in a file) and Postgres, the services, the worker
    mix.py, load.py, calls.py   the orders of a round and the patient caller placing them
    tracker.py                  the orders' states, read with ListOrders
    fault.py, worker_kills.py,  the faults, and the moments they wait for
    outages.py, injectors.py
    audit.py                    the books after a round, read through the public API
    rounds.py, suite.py         one round per fault; the whole run
    report.py, cli.py           the figures as text; flags and exit code
"""
