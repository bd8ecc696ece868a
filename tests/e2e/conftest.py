"""End-to-end tests over the session's `stack` fixture (tests/conftest.py)."""
