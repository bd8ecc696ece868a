"""The local development stack behind `make run`.

`python -m server.devstack` starts every process of the Procfile at the repo
root (Temporal, Postgres, the four services and the worker) under honcho, one
terminal, logs prefixed by process; Ctrl-C stops them all. State lives in
.data/ so a second start finds its workflows and rows again.
"""
